"""Pandera schemas for SDTM datasets, built from the SDTMIG/CT metadata, and their findings.

No schema is written by hand: `build_schema` asks `sdtm.metadata` for the dataset's variables
(type, core status, codelists, value domain) and turns each fact into a pandera column or check.
`schema_findings` runs the schemas lazily and turns pandera's failure cases into findings in
the one finding format (`sdtm.validate.findings`).

Rule ids (stable; the FDA/Pinnacle 21 validator rule is cited where the check is the same):
  SCH-DS       dataset not in SDTMIG metadata (nothing else can be checked)         NOTICE
  SCH-EMPTY    dataset has no records (empty datasets are not submitted)           WARNING
  SCH-VAR      variable not in SDTMIG for the dataset             FDA SD0058       ERROR
  SCH-REQ      Req variable missing (FDA SD0056) or null/blank (FDA SD0002)        ERROR
  SCH-EXP      Exp variable missing                               FDA SD0057       WARNING
  SCH-TYPE     value does not match the Char/Num type; models the check of
               SDTM variable type mismatch                                         ERROR
  SCH-CT       value not in a non-extensible codelist             P21 CT2001       ERROR
  SCH-CTEXT    value not in an extensible codelist                P21 CT2002       WARNING
  SCH-ISO8601  --DTC / duration not ISO 8601 as SDTM uses it      FDA SD0003       ERROR
  SCH-LEN      Char value longer than 200 characters; models the SAS V5 XPT
               200-byte limit checks                                               ERROR
  SCH-KEY      duplicate natural key (--SEQ within subject: FDA SD0005; TS, SUPP,
               DM one record per subject: models the key-uniqueness checks)         ERROR
  SCH-SEQ      --SEQ not a positive integer; models the --SEQ integrity check     ERROR
  SCH-DY0      --DY equal to 0 (SDTM has no study day 0); models the study-day check ERROR
  SCH-DOMAIN   DOMAIN (RDOMAIN for SUPPxx) not the dataset's name; models the
               DOMAIN-value consistency check                                      ERROR
  SCH-RANGE    value outside the range SDTMIG states for the variable (AGE >= 0)   ERROR
"""
from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from clinpipe.errors import ConfigError
from sdtm import metadata
from sdtm.validate.findings import findings_frame, make_findings

MAX_CHAR = 200  # SAS V5 transport: a Char variable holds at most 200 bytes

SEVERITY = {
    "SCH-DS": "NOTICE", "SCH-EMPTY": "WARNING", "SCH-VAR": "ERROR", "SCH-REQ": "ERROR",
    "SCH-EXP": "WARNING", "SCH-TYPE": "ERROR", "SCH-CT": "ERROR", "SCH-CTEXT": "WARNING",
    "SCH-ISO8601": "ERROR", "SCH-LEN": "ERROR", "SCH-KEY": "ERROR", "SCH-SEQ": "ERROR",
    "SCH-DY0": "ERROR", "SCH-DOMAIN": "ERROR", "SCH-RANGE": "ERROR",
}

# The SDTMIG metadata carries no numeric ranges; these are the few the IG text states for a
# variable wherever it occurs (not per domain). Bounds are inclusive.
_RANGES: dict[str, tuple[float | None, float | None]] = {"AGE": (0, None)}

# ---- ISO 8601 as SDTMIG 3.4 section 4.4 uses it ------------------------------------------
# Right-truncated dates/datetimes (YYYY, YYYY-MM, YYYY-MM-DD, then Thh, Thh:mm, Thh:mm:ss[.f]);
# SDTMIG lists "2003-12-15T13" (hour only) among its examples, so it is accepted too.
_DATE = r"\d{4}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?)?"
_TIME = r"T(?:[01]\d|2[0-3])(?::[0-5]\d(?::[0-5]\d(?:\.\d+)?)?)?"
_DATETIME = rf"{_DATE}(?:(?<=\d{{4}}-\d\d-\d\d){_TIME})?"
_DURATION = (r"-?P(?=\d|T\d)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?"
             r"(?:\d+(?:\.\d+)?D)?(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?")
_ISO_PATTERNS = {  # metadata value domain -> full-match pattern
    "ISO 8601 datetime or interval": rf"{_DATETIME}(?:/{_DATETIME})?",
    "ISO 8601 duration": _DURATION,
    "ISO 8601 duration or interval": rf"{_DURATION}|{_DATETIME}/{_DATETIME}",
}


# ---- value helpers: every check must survive any dtype, so they never assume str ----------

def _text(s: pd.Series) -> pd.Series:
    """The string values of `s` (NaN elsewhere); a float or int column has none."""
    if pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty", "mixed", "mixed-integer"):
        return pd.Series(pd.NA, index=s.index, dtype=object)
    return s.where(s.str.len().notna())


def _filled(s: pd.Series) -> pd.Series:
    """True where `s` holds a value: not null and, for text, not blank."""
    blank = _text(s).str.strip().eq("").fillna(False).astype(bool)
    return s.notna() & ~blank


def _number(s: pd.Series) -> pd.Series:
    """Numeric values of `s`; text is NaN here (SCH-TYPE reports it, not every numeric check)."""
    if pd.api.types.is_bool_dtype(s):
        return pd.Series(float("nan"), index=s.index)
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("float64")
    return pd.to_numeric(s.where(_text(s).isna()), errors="coerce")


# ---- check factories (the check's name is its rule id) ------------------------------------

def _check(rule: str, fn, message: str) -> pa.Check:
    # `error` would replace the name in failure cases, so the message rides in `description`.
    return pa.Check(fn, name=rule, description=message)


def _type_check(var: metadata.VarMeta) -> pa.Check:
    if var.type == "Num":
        # Any numeric dtype is fine (XPT stores all numbers as doubles); text never is.
        return _check("SCH-TYPE", lambda s: s.isna() | _number(s).notna(),
                      f"{var.name} is Num but holds a non-numeric value")
    # Char: every non-null value must be a string (a float column of all-null is an empty Char).
    return _check("SCH-TYPE", lambda s: s.isna() | _text(s).notna(),
                  f"{var.name} is Char but holds a non-text value")


def _required_check(var: metadata.VarMeta) -> pa.Check:
    return _check("SCH-REQ", _filled, f"{var.name} is Required and must not be null or blank")


def _length_check(var: metadata.VarMeta) -> pa.Check:
    return _check("SCH-LEN", lambda s: ~(_text(s).str.len() > MAX_CHAR).fillna(False).astype(bool),
                  f"{var.name} is longer than {MAX_CHAR} characters")


def _codelist_check(var: metadata.VarMeta) -> pa.Check | None:
    # Variables with several codelists depend on the test (value-level metadata); not checked here.
    if len(var.codelists) != 1:
        return None
    cl = metadata.codelist(var.codelists[0])
    terms = list(cl.terms)
    rule = "SCH-CTEXT" if cl.extensible else "SCH-CT"
    kind = "extensible" if cl.extensible else "non-extensible"
    # A result variable's codelist covers its coded (qualitative) results; numbers are not coded.
    numeric_ok = var.name.endswith(("ORRES", "STRESC"))
    return _check(rule, lambda s: ~_filled(s) | s.isin(terms) | (numeric_ok & _numeric_text(s)),
                  f"{var.name} value not in {kind} codelist {cl.short} ({cl.code})")


def _numeric_text(s: pd.Series) -> pd.Series:
    return pd.to_numeric(_text(s), errors="coerce").notna()


def _iso_check(var: metadata.VarMeta) -> pa.Check | None:
    pattern = _ISO_PATTERNS.get(var.value_domain)
    if pattern is None and var.is_dtc:
        pattern = _ISO_PATTERNS["ISO 8601 datetime or interval"]
    if pattern is None:
        return None
    return _check("SCH-ISO8601", lambda s: ~_filled(s) | _iso_ok(s, pattern),
                  f"{var.name} is not an ISO 8601 {var.value_domain.removeprefix('ISO 8601 ') or 'datetime'}")


def _iso_ok(s: pd.Series, pattern: str) -> pd.Series:
    text = _text(s)
    shape = text.str.fullmatch(pattern).fillna(False).astype(bool)
    # The regex allows day 31 in any month; the calendar decides complete dates (30 Feb, 29 Feb 2023).
    days = text.str.extractall(r"(?:^|/)(\d{4}-\d\d-\d\d)")[0]
    bad_day = pd.to_datetime(days, format="%Y-%m-%d", errors="coerce").isna()
    bad_rows = bad_day[bad_day].index.get_level_values(0).unique()
    return shape & ~s.index.isin(bad_rows)


def _seq_check(var: metadata.VarMeta) -> pa.Check:
    return _check("SCH-SEQ", lambda s: _number(s).isna() | ((_number(s) > 0) & (_number(s) % 1 == 0)),
                  f"{var.name} must be a positive integer")


def _dy_check(var: metadata.VarMeta) -> pa.Check:
    return _check("SCH-DY0", lambda s: _number(s).ne(0), f"{var.name} is 0; SDTM study days skip day 0")


def _range_check(var: metadata.VarMeta) -> pa.Check | None:
    if var.name not in _RANGES:
        return None
    lo, hi = _RANGES[var.name]

    def ok(s: pd.Series) -> pd.Series:
        x = _number(s)
        inside = pd.Series(True, index=s.index)
        if lo is not None:
            inside &= x.ge(lo)
        if hi is not None:
            inside &= x.le(hi)
        return x.isna() | inside
    return _check("SCH-RANGE", ok, f"{var.name} outside [{lo}, {hi}]")


def _domain_check(dataset: str, var: metadata.VarMeta) -> pa.Check | None:
    # DOMAIN names its own dataset; in SUPPxx, RDOMAIN names the parent (RELREC's RDOMAIN varies).
    if var.name == "DOMAIN":
        expected = dataset
    elif var.name == "RDOMAIN" and dataset.startswith("SUPP") and len(dataset) > 4:
        expected = dataset[4:]
    else:
        return None
    return _check("SCH-DOMAIN", lambda s: ~_filled(s) | s.eq(expected), f"{var.name} must be {expected!r}")


# ---- schema assembly ----------------------------------------------------------------------

def _column(dataset: str, var: metadata.VarMeta) -> pa.Column:
    checks = [_type_check(var)]
    if var.core == "Req":
        checks.append(_required_check(var))
    if var.type == "Char":
        checks += [_length_check(var), _codelist_check(var), _iso_check(var), _domain_check(dataset, var)]
    if var.name == f"{_prefix(dataset)}SEQ":
        checks.append(_seq_check(var))
    if var.type == "Num" and var.name.endswith("DY"):
        checks.append(_dy_check(var))
    checks.append(_range_check(var))
    # Nulls are judged by SCH-REQ (which also catches blanks), so pandera's own nullable stays off.
    # A Req or Exp variable must be present: pandera reports it as column_in_dataframe.
    return pa.Column(None, checks=[c for c in checks if c is not None], nullable=True,
                     required=var.core in ("Req", "Exp"), metadata={"core": var.core})


def _prefix(dataset: str) -> str:
    return dataset if not dataset.startswith("SUPP") else ""


def _key(dataset: str, meta: metadata.DomainMeta, columns: list[str]) -> list[str] | None:
    """The natural key whose uniqueness the structure promises, if the dataset has one here."""
    if dataset.startswith("SUPP"):
        key = ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"]
    elif dataset == "TS":
        key = ["STUDYID", "TSPARMCD", "TSSEQ"]
    elif meta.has(f"{dataset}SEQ"):
        key = ["STUDYID", "USUBJID", f"{dataset}SEQ"]
    elif meta.structure == "One record per subject":
        key = ["STUDYID", "USUBJID"]
    else:
        return None
    # A missing key variable is already SCH-REQ/SCH-EXP; pandera cannot test uniqueness without it.
    return key if all(k in columns for k in key) else None


def build_schema(dataset: str, columns: list[str]) -> pa.DataFrameSchema:
    """Schema for SDTM `dataset` (SUPPxx via SUPPQUAL) given the columns it actually has.

    Variables outside SDTMIG for the dataset fail as column_in_schema (strict), becoming SCH-VAR.
    Raises ConfigError if the dataset is not in the metadata.
    """
    meta = metadata.domain(dataset)
    cols = {v.name: _column(dataset, v) for v in meta.variables}
    return pa.DataFrameSchema(cols, strict=True, unique=_key(dataset, meta, columns),
                              report_duplicates="all", name=dataset)


# ---- failure cases -> findings ------------------------------------------------------------

def schema_findings(datasets: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Findings (standard format) from the metadata schemas of every dataset given."""
    parts = [_dataset_findings(name.upper(), df) for name, df in datasets.items()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else findings_frame()


def _dataset_findings(dataset: str, df: pd.DataFrame) -> pd.DataFrame:
    try:
        schema = build_schema(dataset, list(df.columns))
    except ConfigError:
        return _dataset_finding("SCH-DS", dataset, f"{dataset} is not an SDTMIG "
                                f"{metadata.IG_VERSION} dataset in the metadata; not checked")
    df = df.reset_index(drop=True)  # failure-case indexes must point at unique rows
    out = []
    if df.empty:
        out.append(_dataset_finding("SCH-EMPTY", dataset, f"{dataset} has no records"))
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        out.append(_convert(dataset, df, schema, err.failure_cases))
    return pd.concat(out, ignore_index=True) if out else findings_frame()


def _dataset_finding(rule: str, dataset: str, message: str, variable: str = "") -> pd.DataFrame:
    """A finding about the dataset as a whole (no record to name)."""
    return findings_frame([{"RULE": rule, "SEVERITY": SEVERITY[rule], "DATASET": dataset,
                            "USUBJID": "", "SEQ": float("nan"), "VARIABLE": variable,
                            "VALUE": "", "MESSAGE": message}])


def _convert(dataset: str, df: pd.DataFrame, schema: pa.DataFrameSchema,
             cases: pd.DataFrame) -> pd.DataFrame:
    # A duplicated key is listed once per key column; it is one fault, so the column is dropped.
    columns = cases["column"].where(cases["check"] != "multiple_fields_uniqueness").fillna("")
    out = []
    for (check, column), grp in cases.groupby([cases["check"].astype(str), columns], sort=False):
        out.append(_convert_group(dataset, df, schema, str(check), column, grp))
    return pd.concat(out, ignore_index=True)


def _convert_group(dataset, df, schema, check, column, grp) -> pd.DataFrame:
    """Findings for all failure cases of one check on one column (one vectorised step)."""
    if check == "column_in_schema":
        return pd.concat([_dataset_finding("SCH-VAR", dataset, f"{v} is not an SDTMIG "
                          f"{metadata.IG_VERSION} variable of {dataset}", v) for v in grp["failure_case"]])
    if check == "column_in_dataframe":
        return pd.concat([_missing_column(dataset, schema, v) for v in grp["failure_case"]])
    if check == "multiple_fields_uniqueness":
        return _duplicate_keys(dataset, df, schema, grp)
    rule, message = _rule_of(schema, column, grp)
    rows = grp["index"].dropna().astype(int).unique()
    if len(rows) == 0:  # a check that failed as a whole (it raised): report it on the variable
        return _dataset_finding(rule, dataset, f"{message}: {grp['failure_case'].iloc[0]}", column)
    return make_findings(rule, SEVERITY[rule], dataset, df.loc[rows], column, message)


def _rule_of(schema: pa.DataFrameSchema, column: str, grp: pd.DataFrame) -> tuple[str, str]:
    col = schema.columns[column]
    number = grp["check_number"].dropna()
    if len(number):
        chk = col.checks[int(number.iloc[0])]
        return chk.name, chk.description
    return "SCH-TYPE", f"{column}: {grp['check'].iloc[0]}"  # a pandera built-in on the column


def _missing_column(dataset: str, schema: pa.DataFrameSchema, variable: str) -> pd.DataFrame:
    core = schema.columns[variable].metadata["core"]
    rule = "SCH-REQ" if core == "Req" else "SCH-EXP"
    return _dataset_finding(rule, dataset, f"{core} variable {variable} is missing from {dataset}", variable)


def _duplicate_keys(dataset, df, schema, grp) -> pd.DataFrame:
    rows = grp["index"].dropna().astype(int).unique()
    key = list(schema.unique)
    return make_findings("SCH-KEY", SEVERITY["SCH-KEY"], dataset, df.loc[rows], key[-1],
                         f"duplicate key ({', '.join(key)})")
