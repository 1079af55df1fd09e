"""Pandera schemas for SDTM datasets, built from the SDTMIG/CT metadata, and their findings.

No schema is written by hand: `build_schema` asks `sdtm.metadata` for the dataset's variables
(type, core status, codelists, value domain) and turns each fact into a pandera column or check.
`schema_findings` runs the schemas lazily and turns the failed checks into findings in the one
finding format (`sdtm.validate.findings`).

The checks are columnar (issue 18): each column's values are looked at once per validation
(`_Values`: the text as an Arrow array, its distinct values, the blank mask, the numbers), and
every check of the column reads them from there. Checks on text (codelist, ISO 8601) judge the
distinct values with pyarrow kernels and map the verdict back to the records. While
`schema_findings` runs a schema, a check hands pandera only "passed or not" and keeps its failing
records itself (`_Run`), so pandera builds no failure-case frame; `build_schema(...).validate(df)`
on its own still gets ordinary pandera failure cases.

Input: Char columns as `string[pyarrow]` ('' for missing, as `validate` normalises them) or as
object columns of str (what `read_xpt` and old callers give); Num columns as float64. A column of
another dtype, or an object column mixing text and numbers, is judged the same way, only slower.

Rule ids, severities, what each checks and its source: `SCHEMA_RULES` below (stable ids; the
FDA/Pinnacle 21 validator rule is cited where the check is the same). The conformance report's
rules sheet lists them.
"""
from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import cache, cached_property, lru_cache

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from clinpipe.errors import ConfigError
from sdtm import metadata
from sdtm.dates import day_numbers
from sdtm.validate.findings import findings_frame, make_findings

MAX_CHAR = 200  # SAS V5 transport: a Char variable holds at most 200 bytes

# id -> (severity, what it checks, source)
SCHEMA_RULES: dict[str, tuple[str, str, str]] = {
    "SCH-DS": ("NOTICE", "dataset not in SDTMIG metadata (nothing else can be checked)",
               "SDTMIG 3.4 dataset metadata"),
    "SCH-EMPTY": ("WARNING", "dataset has no records (empty datasets are not submitted)",
                  "FDA Study Data Technical Conformance Guide"),
    "SCH-VAR": ("ERROR", "variable not in SDTMIG for the dataset", "FDA SD0058"),
    "SCH-REQ": ("ERROR", "Req variable missing or null/blank", "FDA SD0056 (missing), SD0002 (null)"),
    "SCH-EXP": ("WARNING", "Exp variable missing", "FDA SD0057"),
    "SCH-TYPE": ("ERROR", "value does not match the variable's Char/Num type",
                 "SDTMIG 3.4 variable metadata; models the SDTM variable type mismatch check"),
    "SCH-CT": ("ERROR", "value not in a non-extensible codelist", "CDISC CT; P21 CT2001"),
    "SCH-CTEXT": ("WARNING", "value not in an extensible codelist", "CDISC CT; P21 CT2002"),
    "SCH-ISO8601": ("ERROR", "--DTC / duration not ISO 8601 as SDTM uses it",
                    "SDTMIG 3.4 section 4.4; FDA SD0003"),
    "SCH-LEN": ("ERROR", "Char value longer than 200 characters",
                "SAS V5 XPT 200-byte limit (FDA Study Data TCG)"),
    "SCH-KEY": ("ERROR", "duplicate natural key (--SEQ within subject; TS, SUPP--; DM: one per subject)",
                "FDA SD0005; models the key-uniqueness checks"),
    "SCH-SEQ": ("ERROR", "--SEQ not a positive integer", "SDTMIG 3.4 identifier variables (--SEQ)"),
    "SCH-DY0": ("ERROR", "--DY equal to 0 (SDTM has no study day 0)",
                "SDTMIG 3.4 timing variables (study day); models the study-day check"),
    "SCH-DOMAIN": ("ERROR", "DOMAIN (RDOMAIN for SUPP--) not the dataset's name",
                   "SDTMIG 3.4 identifier variables; models the DOMAIN-value consistency check"),
    "SCH-RANGE": ("ERROR", "value outside the range SDTMIG states for the variable (AGE >= 0)",
                  "SDTMIG 3.4 variable definitions"),
}
SEVERITY = {rule: severity for rule, (severity, _, _) in SCHEMA_RULES.items()}

# The SDTMIG metadata carries no numeric ranges; these are the few the IG text states for a
# variable wherever it occurs (not per domain). Bounds are inclusive.
_RANGES: dict[str, tuple[float | None, float | None]] = {"AGE": (0, None)}

# ---- ISO 8601 as SDTMIG 3.4 section 4.4 uses it ------------------------------------------
# Right-truncated dates/datetimes (YYYY, YYYY-MM, YYYY-MM-DD, then Thh, Thh:mm, Thh:mm:ss[.f]);
# SDTMIG lists "2003-12-15T13" (hour only) among its examples, so it is accepted too. A time only
# follows a complete date. The patterns have no lookaround: pyarrow's RE2 has none. They run on
# ASCII text only (RE2's \d is an ASCII digit); a value with other characters is not ISO 8601.
_TIME = r"T(?:[01]\d|2[0-3])(?::[0-5]\d(?::[0-5]\d(?:\.\d+)?)?)?"
_DATETIME = rf"\d{{4}}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01])(?:{_TIME})?)?)?"
# A duration: P, then at least one of Y M W D (in order), then T with at least one of H M S.
_N = r"\d+(?:\.\d+)?"
_YMWD = rf"(?:{_N}Y(?:{_N}M)?(?:{_N}W)?(?:{_N}D)?|{_N}M(?:{_N}W)?(?:{_N}D)?|{_N}W(?:{_N}D)?|{_N}D)"
_HMS = rf"T(?:{_N}H(?:{_N}M)?(?:{_N}S)?|{_N}M(?:{_N}S)?|{_N}S)"
_DURATION = rf"-?P(?:{_YMWD}(?:{_HMS})?|{_HMS})"
_ISO_PATTERNS = {  # metadata value domain -> full-match pattern
    "ISO 8601 datetime or interval": rf"{_DATETIME}(?:/{_DATETIME})?",
    "ISO 8601 duration": _DURATION,
    "ISO 8601 duration or interval": rf"{_DURATION}|{_DATETIME}/{_DATETIME}",
}
# The regex allows day 31 in any month; the calendar decides the complete dates (30 Feb, 29 Feb 2023)
# at the start of the value and after the interval's "/".
_DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"


# ---- one column's values, computed once for all its checks --------------------------------

# What pandas' infer_dtype calls a column that holds text (the rest hold none).
_TEXT_KINDS = ("string", "empty", "mixed", "mixed-integer")


class _Values:
    """The values of one column as the checks see them; each helper is computed on first use.

    `text` is an Arrow array of the text values (null where a record holds no text), `nontext`
    marks the records holding a value that is not text (a number in a Char column), `number` the
    numeric values (NaN for text and nulls). Masks are numpy bool arrays over the records.
    """

    def __init__(self, s: pd.Series):
        self.s = s
        self.n = len(s)

    @cached_property
    def na(self) -> np.ndarray:
        return self.s.isna().to_numpy(dtype=bool)

    @cached_property
    def _text_and_mask(self) -> tuple[pyarrow.Array | None, np.ndarray | None]:
        s = self.s
        if _is_string_dtype(s.dtype):
            return _large(_one_chunk(pyarrow.array(s.array))), None
        if s.dtype != object:
            return None, None
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind in ("string", "empty"):
            return _one_chunk(pyarrow.array(s.to_numpy(), type=pyarrow.large_string(), from_pandas=True)), None
        if kind not in _TEXT_KINDS:
            return None, None
        # Text mixed with other values: only un-normalised object columns get here (a per-record
        # type test; `validate` hands over Char columns as string[pyarrow]).
        values = s.to_numpy()
        is_text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
        return _one_chunk(pyarrow.array(np.where(is_text, values, None), type=pyarrow.large_string(),
                                        from_pandas=True)), is_text

    @property
    def text(self) -> pyarrow.Array | None:
        return self._text_and_mask[0]

    @cached_property
    def nontext(self) -> np.ndarray:
        text, is_text = self._text_and_mask
        if text is None:
            return ~self.na
        if is_text is None:
            return np.zeros(self.n, dtype=bool)
        return ~is_text & ~self.na

    @cached_property
    def number(self) -> np.ndarray:
        s = self.s
        if pd.api.types.is_bool_dtype(s):
            return np.full(self.n, np.nan)
        if pd.api.types.is_numeric_dtype(s):
            return s.to_numpy(dtype="float64", na_value=np.nan)
        if self.text is not None and not self.nontext.any():
            return np.full(self.n, np.nan)  # only text (SCH-TYPE reports it, not every numeric check)
        is_text = self._text_and_mask[1]
        keep = ~is_text if is_text is not None else np.ones(self.n, dtype=bool)
        return pd.to_numeric(s.where(keep), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)

    @cached_property
    def blank(self) -> np.ndarray:
        """Text that is empty or only whitespace (a null or a number is not blank)."""
        return _blank(self.text) if self.text is not None else np.zeros(self.n, dtype=bool)

    @cached_property
    def distinct(self) -> pyarrow.Array:
        """The distinct text values (no null)."""
        return pc.drop_null(pc.unique(self.text))

    def rows(self, bad: np.ndarray) -> np.ndarray:
        """A verdict on the distinct values, as a mask over the records."""
        if not bad.any():  # the usual case: nothing to map back
            return np.zeros(self.n, dtype=bool)
        return _mask(pc.is_in(self.text, value_set=self.distinct.filter(pyarrow.array(bad))))


def _is_string_dtype(dtype) -> bool:
    if isinstance(dtype, pd.StringDtype):
        return True
    return isinstance(dtype, pd.ArrowDtype) and (pyarrow.types.is_string(dtype.pyarrow_dtype)
                                                 or pyarrow.types.is_large_string(dtype.pyarrow_dtype))


def _one_chunk(arr) -> pyarrow.Array:
    if isinstance(arr, pyarrow.ChunkedArray):
        if arr.num_chunks == 1:
            return arr.chunk(0)
        return arr.combine_chunks() if arr.num_chunks else pyarrow.array([], type=arr.type)
    return arr


def _large(arr: pyarrow.Array) -> pyarrow.Array:
    # One string type for every column (string[python] arrives as string, pyarrow's as large_string).
    return arr if pyarrow.types.is_large_string(arr.type) else arr.cast(pyarrow.large_string())


def _mask(arr: pyarrow.Array) -> np.ndarray:
    """An Arrow boolean array as a numpy mask, null as False."""
    if not pc.any(arr).as_py():  # most verdicts are all False: skip unpacking the bits
        return np.zeros(len(arr), dtype=bool)
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False)


def _blank(text: pyarrow.Array) -> np.ndarray:
    # utf8_is_space is Python's str.isspace for every code point; '' is blank too.
    return _mask(pc.or_(pc.equal(pc.binary_length(text), 0), pc.utf8_is_space(text)))


class _Run:
    """One validation of one frame: the column values its checks share, and what failed.

    pandera validates column by column, so only the current column's values are kept.
    """

    def __init__(self, df: pd.DataFrame):
        self.n = len(df)
        self.failed: dict[tuple[str, str], np.ndarray] = {}   # (column, rule) -> failing row positions
        self._name: str | None = None
        self._values: _Values | None = None

    def owns(self, s: pd.Series) -> bool:
        # The frame is validated in place with nothing coerced, so a column name names its values.
        return len(s) == self.n

    def values(self, s: pd.Series) -> _Values:
        if self._name != s.name:
            self._name, self._values = s.name, _Values(s)
        return self._values

    def judge(self, s: pd.Series, rule: str, bad_rows: Callable[[_Values], np.ndarray]) -> bool:
        bad = bad_rows(self.values(s))
        if not bad.any():
            return True
        self.failed[(str(s.name), rule)] = np.flatnonzero(bad)
        return False


_RUN: ContextVar[_Run | None] = ContextVar("sdtm_schema_run", default=None)


# ---- check factories (the check's name is its rule id) ------------------------------------

def _check(rule: str, bad_rows: Callable[[_Values], np.ndarray], message: str) -> pa.Check:
    """A check from a function marking the records that break `rule` (never a null record)."""
    def check(s: pd.Series):
        run = _RUN.get()
        if run is not None and run.owns(s):
            return run.judge(s, rule, bad_rows)
        return pd.Series(~bad_rows(_Values(s)), index=s.index)
    # `error` would replace the name in failure cases, so the message rides in `description`.
    # Nulls pass every check (`bad_rows` never marks one), so pandera need not drop them first.
    return pa.Check(check, name=rule, description=message, ignore_na=False)


def _type_check(var: metadata.VarMeta) -> pa.Check:
    if var.type == "Num":
        # Any numeric dtype is fine (XPT stores all numbers as doubles); text never is.
        return _check("SCH-TYPE", lambda v: ~v.na & np.isnan(v.number),
                      f"{var.name} is Num but holds a non-numeric value")
    # Char: every non-null value must be a string (a float column of all-null is an empty Char).
    return _check("SCH-TYPE", lambda v: v.nontext, f"{var.name} is Char but holds a non-text value")


def _required_check(var: metadata.VarMeta) -> pa.Check:
    # Blank text only: a null (NaN, None) was never reported here (pandera dropped nulls before
    # the check), and the findings stay as they were; `validate` turns Char nulls into ''.
    return _check("SCH-REQ", lambda v: v.blank, f"{var.name} is Required and must not be null or blank")


def _too_long(v: _Values) -> np.ndarray:
    if v.text is None or len(v.text) == 0:
        return np.zeros(v.n, dtype=bool)
    # A character takes at least one byte: only values over MAX_CHAR bytes need counting.
    if (pc.max(pc.binary_length(v.text)).as_py() or 0) <= MAX_CHAR:
        return np.zeros(v.n, dtype=bool)
    return _mask(pc.greater(pc.utf8_length(v.text), MAX_CHAR))


def _length_check(var: metadata.VarMeta) -> pa.Check:
    return _check("SCH-LEN", _too_long, f"{var.name} is longer than {MAX_CHAR} characters")


def _codelist_check(var: metadata.VarMeta) -> pa.Check | None:
    # Variables with several codelists depend on the test (value-level metadata); not checked here.
    if len(var.codelists) != 1:
        return None
    cl = metadata.codelist(var.codelists[0])
    rule = "SCH-CTEXT" if cl.extensible else "SCH-CT"
    kind = "extensible" if cl.extensible else "non-extensible"
    # A result variable's codelist covers its coded (qualitative) results; numbers are not coded.
    numeric_ok = var.name.endswith(("ORRES", "STRESC"))

    def bad_rows(v: _Values) -> np.ndarray:
        if v.text is None:
            return v.nontext
        values = v.distinct
        bad = ~_blank(values) & ~_mask(pc.is_in(values, value_set=_terms(cl.code)))
        if numeric_ok and bad.any():
            at = np.flatnonzero(bad)
            bad[at] = ~_numeric_text(values.take(pyarrow.array(at)))
        return v.rows(bad) | v.nontext
    return _check(rule, bad_rows, f"{var.name} value not in {kind} codelist {cl.short} ({cl.code})")


@cache
def _terms(code: str) -> pyarrow.Array:
    return pyarrow.array(list(metadata.codelist(code).terms), type=pyarrow.large_string())


def _numeric_text(values: pyarrow.Array) -> np.ndarray:
    """Which text values are a number (pandas' reading of it), also with a comparison
    operator: '<3.42' and '>=1000' are results below or above a limit, not coded terms."""
    text = pd.Series(values.to_numpy(zero_copy_only=False), dtype=object)
    bare = text.str.replace(r"^\s*(?:<=|>=|<|>)\s*", "", regex=True)
    return pd.to_numeric(bare, errors="coerce").notna().to_numpy()


def _iso_check(var: metadata.VarMeta) -> pa.Check | None:
    pattern = _ISO_PATTERNS.get(var.value_domain)
    if pattern is None and var.is_dtc:
        pattern = _ISO_PATTERNS["ISO 8601 datetime or interval"]
    if pattern is None:
        return None

    def bad_rows(v: _Values) -> np.ndarray:
        if v.text is None:
            return v.nontext
        values = v.distinct
        return v.rows(~_blank(values) & ~_iso_ok(values, pattern)) | v.nontext
    return _check("SCH-ISO8601", bad_rows,
                  f"{var.name} is not an ISO 8601 {var.value_domain.removeprefix('ISO 8601 ') or 'datetime'}")


def _iso_ok(values: pyarrow.Array, pattern: str) -> np.ndarray:
    """Which (distinct) text values are ISO 8601 by `pattern` and name real calendar days."""
    ok = np.zeros(len(values), dtype=bool)
    ascii_ = _mask(pc.string_is_ascii(values))
    at = np.flatnonzero(ascii_)
    if len(at):
        sub = values.take(pyarrow.array(at))
        shape = _mask(pc.match_substring_regex(sub, f"^(?:{pattern})$"))
        at, sub = at[shape], sub.filter(pyarrow.array(shape))
        first = pc.struct_field(pc.extract_regex(sub, rf"^(?P<d>{_DAY})"), "d")
        second = pc.struct_field(pc.extract_regex(sub, rf"/(?P<d>{_DAY})"), "d")
        days = pc.unique(pc.drop_null(pyarrow.concat_arrays([first, second])))
        wrong = days.filter(pyarrow.array(_not_a_day(days.to_numpy(zero_copy_only=False))))
        ok[at] = ~(_mask(pc.is_in(first, value_set=wrong)) | _mask(pc.is_in(second, value_set=wrong)))
    # text with non-ASCII characters (digits such as '٢٠٢٥' included) is not ISO 8601
    return ok


def _not_a_day(days: np.ndarray) -> np.ndarray:
    return np.isnan(day_numbers(days))


def _seq_check(var: metadata.VarMeta) -> pa.Check:
    def bad_rows(v: _Values) -> np.ndarray:
        x = v.number
        with np.errstate(invalid="ignore"):
            return ~np.isnan(x) & ~((x > 0) & np.isfinite(x) & (np.floor(x) == x))
    return _check("SCH-SEQ", bad_rows, f"{var.name} must be a positive integer")


def _dy_check(var: metadata.VarMeta) -> pa.Check:
    return _check("SCH-DY0", lambda v: v.number == 0, f"{var.name} is 0; SDTM study days skip day 0")


def _range_check(var: metadata.VarMeta) -> pa.Check | None:
    if var.name not in _RANGES:
        return None
    lo, hi = _RANGES[var.name]

    def bad_rows(v: _Values) -> np.ndarray:
        x = v.number
        inside = np.ones(v.n, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return ~np.isnan(x) & ~inside
    return _check("SCH-RANGE", bad_rows, f"{var.name} outside [{lo}, {hi}]")


def _domain_check(dataset: str, var: metadata.VarMeta) -> pa.Check | None:
    # DOMAIN names its own dataset; in SUPPxx, RDOMAIN names the parent (RELREC's RDOMAIN varies).
    if var.name == "DOMAIN":
        expected = dataset
    elif var.name == "RDOMAIN" and dataset.startswith("SUPP") and len(dataset) > 4:
        expected = dataset[4:]
    else:
        return None

    def bad_rows(v: _Values) -> np.ndarray:
        if v.text is None:
            return v.nontext
        return (_mask(pc.not_equal(v.text, expected)) & ~v.blank) | v.nontext
    return _check("SCH-DOMAIN", bad_rows, f"{var.name} must be {expected!r}")


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

    It holds the dataset's variables among `columns` and every Req and Exp variable (a missing
    one is a finding); a Perm variable the frame lacks has nothing to check, so it is left out.
    Variables outside SDTMIG for the dataset, and outside the SDTM model for its class, fail as
    column_in_schema (strict), becoming SCH-VAR.
    Raises ConfigError if the dataset is not in the metadata.
    """
    meta = metadata.domain(dataset)
    present = set(columns)
    cols = {v.name: _column(dataset, v) for v in meta.variables if v.name in present or v.core != "Perm"}
    # the SDTM model lets a domain of a general class carry any of the class's qualifiers and
    # any identifier or timing variable (MHSEV, CMDTC, VISITNUM in DS): checked as Perm
    for name in columns:
        if name not in cols and (extra := metadata.model_variable(dataset, name)) is not None:
            cols[name] = _column(dataset, extra)
    return pa.DataFrameSchema(cols, strict=True, unique=_key(dataset, meta, columns),
                              report_duplicates="all", name=dataset)


@lru_cache(maxsize=256)
def _schema(dataset: str, columns: tuple[str, ...]) -> pa.DataFrameSchema:
    # pandera deep-copies every column when it builds a schema, a fixed cost as large as the
    # checks of a small study; the checks keep no state between runs (that lives in `_Run`),
    # so one schema serves every frame of the same dataset and columns.
    return build_schema(dataset, list(columns))


# ---- failed checks -> findings ------------------------------------------------------------

def schema_findings(datasets: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Findings (standard format) from the metadata schemas of every dataset given."""
    parts = [_dataset_findings(name.upper(), df) for name, df in datasets.items()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else findings_frame()


def _dataset_findings(dataset: str, df: pd.DataFrame) -> pd.DataFrame:
    try:
        schema = _schema(dataset, tuple(map(str, df.columns)))
    except ConfigError:
        return findings_frame([_dataset_row("SCH-DS", dataset, f"{dataset} is not an SDTMIG "
                                            f"{metadata.IG_VERSION} dataset in the metadata; not checked")])
    # Row positions name the records (failure indexes must point at unique rows): a shallow
    # copy with a fresh index, so the caller's frame is neither copied nor changed.
    df = df.copy(deep=False)
    df.index = pd.RangeIndex(len(df))
    rows = [_dataset_row("SCH-EMPTY", dataset, f"{dataset} has no records")] if df.empty else []
    frames = []
    run = _Run(df)
    token = _RUN.set(run)
    try:
        schema.validate(df, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as err:
        _convert(dataset, df, schema, err.failure_cases, run, rows, frames)
    finally:
        _RUN.reset(token)
    if rows:  # findings about the dataset as a whole: one frame for all of them
        frames.append(findings_frame(rows))
    return pd.concat(frames, ignore_index=True) if frames else findings_frame()


def _dataset_row(rule: str, dataset: str, message: str, variable: str = "") -> dict:
    """A finding about the dataset as a whole (no record to name)."""
    return {"RULE": rule, "SEVERITY": SEVERITY[rule], "DATASET": dataset, "USUBJID": "",
            "SEQ": float("nan"), "VARIABLE": variable, "VALUE": "", "MESSAGE": message}


def _convert(dataset: str, df: pd.DataFrame, schema: pa.DataFrameSchema, cases: pd.DataFrame,
             run: _Run, rows: list[dict], frames: list[pd.DataFrame]) -> None:
    """Findings of every failed check: dataset-level ones to `rows`, record-level frames to `frames`."""
    # A duplicated key is listed once per key column; it is one fault, so the column is dropped.
    columns = cases["column"].where(cases["check"] != "multiple_fields_uniqueness").fillna("")
    for (check, column), grp in cases.groupby([cases["check"].astype(str), columns], sort=False):
        check = str(check)
        if check == "column_in_schema":
            rows += [_dataset_row("SCH-VAR", dataset, f"{v} is not an SDTMIG {metadata.IG_VERSION} "
                                  f"variable of {dataset} nor one the SDTM model allows there "
                                  "(a non-standard variable goes in SUPP--)", v)
                     for v in grp["failure_case"]]
        elif check == "column_in_dataframe":
            rows += [_missing_column(dataset, schema, v) for v in grp["failure_case"]]
        elif check == "multiple_fields_uniqueness":
            frames.append(_duplicate_keys(dataset, df, schema, grp))
        else:
            _check_findings(dataset, df, schema, column, grp, run, rows, frames)


def _check_findings(dataset, df, schema, column, grp, run: _Run, rows, frames) -> None:
    """Findings for all failed records of one check on one column (one vectorised step)."""
    rule, message = _rule_of(schema, column, grp)
    failed = run.failed.get((column, rule))
    if failed is None:  # not one of our checks' verdicts: pandera's failure cases name the rows
        failed = grp["index"].dropna().astype(int).unique()
    if len(failed) == 0:  # a check that failed as a whole (it raised): report it on the variable
        rows.append(_dataset_row(rule, dataset, f"{message}: {grp['failure_case'].iloc[0]}", column))
        return
    frames.append(make_findings(rule, SEVERITY[rule], dataset, _records(df, failed, dataset, [column]),
                                column, message))


def _records(df: pd.DataFrame, rows, dataset: str, variables: list[str]) -> pd.DataFrame:
    """The failed rows with only the columns a finding shows (not a copy of the whole record)."""
    keep = [c for c in dict.fromkeys(["USUBJID", f"{dataset}SEQ", *variables]) if c in df.columns]
    return df.iloc[np.asarray(rows), [df.columns.get_loc(c) for c in keep]]


def _rule_of(schema: pa.DataFrameSchema, column: str, grp: pd.DataFrame) -> tuple[str, str]:
    col = schema.columns[column]
    number = grp["check_number"].dropna()
    if len(number):
        chk = col.checks[int(number.iloc[0])]
        return chk.name, chk.description
    return "SCH-TYPE", f"{column}: {grp['check'].iloc[0]}"  # a pandera built-in on the column


def _missing_column(dataset: str, schema: pa.DataFrameSchema, variable: str) -> dict:
    core = schema.columns[variable].metadata["core"]
    rule = "SCH-REQ" if core == "Req" else "SCH-EXP"
    return _dataset_row(rule, dataset, f"{core} variable {variable} is missing from {dataset}", variable)


def _duplicate_keys(dataset, df, schema, grp) -> pd.DataFrame:
    rows = grp["index"].dropna().astype(int).unique()
    key = list(schema.unique)
    return make_findings("SCH-KEY", SEVERITY["SCH-KEY"], dataset, _records(df, rows, dataset, key[-1:]),
                         key[-1], f"duplicate key ({', '.join(key)})")
