"""Algorithms for the findings domains (LB, VS, EG, PC), vectorised like sdtm.algorithms.

- `standardize`   --STRESC / --STRESN / --STRESU (`part:`) from a result and its unit, through a
                  conversion table kept as data (mappings/common/lab_units.yaml); without a table
                  the result is already in its standard unit. Also converts reference ranges
                  (`part: STRESN` on --ORNRLO gives --STNRLO).
- `nrind`         --NRIND LOW / NORMAL / HIGH from the standardized result and range.
- `lobxfl`        --LOBXFL "Y" on the last result before the first study treatment (SDTMIG 3.4).
- `ct_paired`     --TEST from --TESTCD: the term of another codelist with the same NCI C-code.
- `split_ct`      a `split:` item's value through a codelist (VSTESTCD, VSORRESU of a split form).
- `number`        a numeric variable (float) from a field, optionally through a code -> number map.

Every value an algorithm cannot derive for a reason the data should fix (unknown unit, a code
without a term) is reported in `ctx.issues`, never dropped silently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from clinpipe.errors import ConfigError
from clinpipe.paths import mappings_dir
from clinpipe.yamlio import load_yaml
from edc.export import format_number
from sdtm import metadata
from sdtm.algorithms import Algorithm

# A result that is a number, possibly with a comparison operator: "12.5", "<5", ">= 1000".
_NUMBER = re.compile(r"^\s*(<=|>=|<|>)?\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_PARTS = ("STRESC", "STRESN", "STRESU")


# -- helpers -----------------------------------------------------------------------------------

def parse_results(text: pd.Series) -> pd.DataFrame:
    """Columns `op` ('' for a plain number, '<', '<=', '>', '>=') and `num` (float, NaN when
    the text is not a number) for each result text."""
    text = text.fillna("").astype(str)
    parts = text.str.extract(_NUMBER)
    return pd.DataFrame({"op": parts[0].fillna("").astype(object),
                         "num": pd.to_numeric(parts[1], errors="coerce")}, index=text.index)


def number_text(values: pd.Series) -> pd.Series:
    """Numbers as their canonical text ('105', '75.14'), '' for NaN; binary noise of a product
    (0.85 * 88.4 = 75.14000000000001) is rounded away at 12 significant digits."""
    texts = {v: format_number(float(f"{v:.12g}")) for v in pd.unique(values.dropna())}
    return values.map(texts).fillna("").astype(object)


def _domain_variable(ref: str, var) -> bool:
    """Is `ref` an SDTM variable of the domain `var` belongs to (not a raw field to check)?"""
    try:
        return metadata.domain(var.name[:2]).has(ref)
    except ConfigError:
        return False


def _raw_refs(var, *refs) -> list[str]:
    return [r for r in refs if r and not _domain_variable(r, var)]


def _issue_once(ctx, var_name: str, rows, values, message: str) -> None:
    """Report each (record, message) once although several variables derive from it."""
    seen = {(i, m) for _, i, _, m in ctx.issues}
    for idx, value in zip(rows, values):
        if (idx, message) not in seen:
            ctx.issues.append((var_name, idx, value, message))


def _check_ct(values: pd.Series, codelist: str | None) -> pd.Series:
    """Values an algorithm emits are CT terms by construction; fail loudly if one is not."""
    if codelist:
        cl = metadata.codelist(str(codelist))
        bad = sorted({v for v in values.unique() if v and cl.lookup(v) != v})
        if bad:
            raise ConfigError(f"values {bad} are not terms of codelist {cl.short} ({cl.code})")
    return values


def _to_ct(ctx, var, values: pd.Series) -> pd.Series:
    """Values -> submission values: `map` first, then the codelist (value, synonym, NCI term);
    anything else is reported and kept upper-cased (as assign_ct does)."""
    mapping = {str(k): str(v) for k, v in (var.options.get("map") or {}).items()}
    cl = metadata.codelist(str(var.options["codelist"])) if "codelist" in var.options else None
    table = {}
    for value in values.unique():
        if value == "":
            table[value] = ""
        elif value in mapping:
            table[value] = mapping[value]
        elif cl is not None and (hit := cl.lookup(value)):
            table[value] = hit
        else:
            table[value] = None
    out = values.map(table)
    missing = out.isna()
    _issue_once(ctx, var.name, out.index[missing], values[missing],
                "value has no controlled term; add it to the spec's map")
    return out.where(~missing, values.str.upper()).astype(object)


# -- conversion table --------------------------------------------------------------------------

@dataclass(frozen=True)
class ConversionTable:
    """Standard unit per test and factors from other units (standard = original x factor).
    Units are held as CDISC UNIT submission values, so 'ng/mL' and 'ug/L' are one unit."""
    path: Path
    standard: dict[str, str]                    # test code -> standard unit
    factors: dict[tuple[str, str], float]       # (test code, original unit) -> factor


def table_path(name: str) -> Path:
    return mappings_dir() / "common" / name


@cache
def conversion_table(name: str) -> ConversionTable:
    """Load and check `mappings/common/<name>`: every test a term of its codelist, every unit
    a UNIT term, every factor a positive number, a unit equal to the standard only with 1."""
    path = table_path(name)
    loaded = load_yaml(path)
    data = loaded.data or {}
    lists = data.get("codelists") or {}
    test_cl = metadata.codelist(str(lists.get("test", "LBTESTCD")))
    unit_cl = metadata.codelist(str(lists.get("unit", "UNIT")))

    def unit(value, loc):
        hit = unit_cl.lookup(str(value))
        if hit is None:
            raise ConfigError(f"unit {value!r} is not a term of codelist {unit_cl.short} ({unit_cl.code})",
                              file=path, record=f"line {loaded.line_of(loc)}", field=".".join(map(str, loc)))
        return hit

    standard, factors = {}, {}
    for test, entry in (data.get("tests") or {}).items():
        loc = ("tests", test)
        where = {"file": path, "record": f"line {loaded.line_of(loc)}", "field": f"tests.{test}"}
        if test_cl.lookup(str(test)) != test:
            raise ConfigError(f"{test!r} is not a submission value of codelist {test_cl.short}", **where)
        if not isinstance(entry, dict) or "standard" not in entry:
            raise ConfigError("each test needs a standard unit (standard:) and optional factors (from:)",
                              **where)
        std = unit(entry["standard"], (*loc, "standard"))
        standard[test] = std
        factors[(test, std)] = 1.0
        for original, factor in (entry.get("from") or {}).items():
            src = unit(original, (*loc, "from", original))
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0:
                raise ConfigError(f"factor for {original!r} must be a positive number", **where)
            if src == std and factor != 1:
                raise ConfigError(f"{original!r} is the standard unit {std!r} (a CT synonym): its factor "
                                  "must be 1", **where)
            factors[(test, src)] = float(factor)
    return ConversionTable(path, standard, factors)


def standardize(result: pd.Series, unit: pd.Series, test: pd.Series | None = None,
                table: ConversionTable | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """STRESC / STRESN / STRESU for each result, and a problem text per record ('' if none).

    - empty result: all empty;
    - a number: x factor; STRESN and STRESC hold the converted value (the collected text
      when the factor is 1, so a reported "3.50" stays "3.50"), STRESN exactly the number
      STRESC shows (no float noise of the multiplication);
    - a number with an operator ("<5", ">1000"): STRESC keeps the operator with the converted
      number ("<0.5" mg/dL -> "<5" mg/L), STRESN is empty (not an exact value);
    - other text ("NEGATIVE"): copied to STRESC, no unit;
    - a number whose unit the table cannot convert: all empty, with a problem to report.
    Without a table the unit collected is the standard unit (factor 1)."""
    result = result.fillna("").astype(str).str.strip()
    unit = unit.fillna("").astype(str).str.strip()
    parsed = parse_results(result)
    numeric = parsed["num"].notna()
    problem = pd.Series("", index=result.index, dtype=object)
    if table is None:
        factor = pd.Series(1.0, index=result.index)
        std_unit = unit.astype(object)
    else:
        test = test.fillna("").astype(str)
        std_unit = test.map(table.standard)
        known = pd.Series(table.factors, dtype="float64")
        factor = pd.Series(known.reindex(pd.MultiIndex.from_arrays([test, unit])).to_numpy(),
                           index=result.index)
        no_test = numeric & std_unit.isna()
        no_unit = numeric & std_unit.notna() & (unit == "")
        no_factor = numeric & std_unit.notna() & (unit != "") & factor.isna()
        name = table.path.name
        problem[no_test] = f"test has no standard unit in {name}"
        problem[no_unit] = "numeric result without a unit: cannot standardize"
        problem[no_factor] = ("unit '" + unit[no_factor] + "' has no factor to the standard unit '"
                              + std_unit[no_factor].astype(str) + f"' in {name}")
        std_unit = std_unit.fillna("")
    converted = parsed["num"] * factor
    ok = numeric & factor.notna()
    as_text = number_text(converted)
    stresc = pd.Series("", index=result.index, dtype=object)
    stresc[~numeric] = result[~numeric]                       # character results, as collected
    same = ok & (factor == 1)
    stresc[same] = result[same]
    scaled = ok & (factor != 1)
    stresc[scaled] = parsed.loc[scaled, "op"] + as_text[scaled]
    # STRESN is the number STRESC shows: the converted value rounded as its text is (12
    # significant digits), so 14.706000000000001 (binary noise of x factor) is 14.706 in both.
    shown = parse_results(stresc)["num"]
    stresn = shown.where(ok & (parsed["op"] == ""))
    stresu = std_unit.where(ok, "").astype(object)
    out = pd.DataFrame({"STRESC": stresc, "STRESN": stresn.astype("float64"), "STRESU": stresu})
    return out, problem


def normal_range_indicator(result: pd.Series, low: pd.Series, high: pd.Series) -> pd.Series:
    """LOW / NORMAL / HIGH (CT NRIND) of each standardized result against its standardized
    range, bounds inclusive; '' when no range or the result cannot be placed. A limit result
    is placed only when the bound decides it: "<5" with upper limit 10 and no lower limit is
    NORMAL, "<5" with lower limit 5 is LOW, "<5" with lower limit 3 is unknown."""
    parsed = parse_results(result)
    op, x = parsed["op"], parsed["num"]
    low = pd.to_numeric(low, errors="coerce")
    high = pd.to_numeric(high, errors="coerce")
    has_lo, has_hi = low.notna(), high.notna()
    exact = x.notna() & (op == "")
    below = x.notna() & op.isin(["<", "<="])
    above = x.notna() & op.isin([">", ">="])
    is_low = (exact & has_lo & (x < low)) \
        | (below & has_lo & ((x <= low) & (op == "<") | (x < low) & (op == "<=")))
    is_high = (exact & has_hi & (x > high)) \
        | (above & has_hi & ((x >= high) & (op == ">") | (x > high) & (op == ">=")))
    is_normal = (exact & (has_lo | has_hi) & ~is_low & ~is_high) \
        | (below & ~has_lo & has_hi & (x <= high)) \
        | (above & ~has_hi & has_lo & (x >= low))
    out = pd.Series("", index=result.index, dtype=object)
    out[is_normal] = "NORMAL"
    out[is_low] = "LOW"
    out[is_high] = "HIGH"
    return out


def last_before_exposure(subject: pd.Series, test: pd.Series, dtc: pd.Series, ref: pd.Series,
                         has_result: pd.Series, same_day: pd.Series) -> pd.Series:
    """'Y' on the last record with a result before the reference date/time, per subject and
    test (SDTMIG 3.4 --LOBXFL), as sdtm.oak's derive_blfl decides "before":
    - a full date before the reference date;
    - the reference date, both times known, the time before the reference time;
    - the reference date, a time missing on either side: only where `same_day` says so (a
      pre-dose timepoint), since the data cannot tell.
    Partial dates are never flagged. Ties on --DTC: the later record in collection order."""
    dtc = dtc.fillna("").astype(str)
    ref = ref.fillna("").astype(str)
    d, rd = dtc.str[:10], ref.str[:10]
    t, rt = dtc.str[11:16], ref.str[11:16]
    full = d.str.match(r"^\d{4}-\d{2}-\d{2}$") & rd.str.match(r"^\d{4}-\d{2}-\d{2}$")
    timed = (t.str.len() == 5) & (rt.str.len() == 5)
    before = full & has_result & ((d < rd) | ((d == rd) & timed & (t < rt))
                                  | ((d == rd) & ~timed & same_day))
    frame = pd.DataFrame({"s": subject, "t": test, "dtc": dtc, "pos": np.arange(len(dtc))})[before]
    last = frame.sort_values(["s", "t", "dtc", "pos"], kind="stable").groupby(["s", "t"]).tail(1).index
    out = pd.Series("", index=dtc.index, dtype=object)
    out[last] = "Y"
    return out


# -- the algorithms ----------------------------------------------------------------------------

class Standardize(Algorithm):
    """{standardize: LBORRES, unit: LBORRESU, test: LBTESTCD, table: lab_units.yaml, part: STRESC}
    (see `standardize`). Result, unit and test may be raw fields or variables mapped above;
    with a table the unit is read as a CDISC UNIT term (raw text is looked up in UNIT).
    Unconvertible numbers are reported once per record. The table is checked when the spec
    loads."""
    options = ("unit", "test", "table", "part")

    def fields(self, var):
        if var.options.get("table"):
            conversion_table(str(var.options["table"]))
        return _raw_refs(var, var.arg, var.options.get("unit"), var.options.get("test"))

    def run(self, ctx, var):
        part = var.options.get("part", var.name[2:])
        if part not in _PARTS:
            raise ConfigError(f"standardize part must be one of {', '.join(_PARTS)}, not {part!r}",
                              field=var.name)
        result = ctx.column(var.arg)
        unit = ctx.column(var.options["unit"]) if var.options.get("unit") else pd.Series("", index=result.index)
        unit = unit.fillna("").astype(str)
        test = ctx.column(var.options["test"]) if var.options.get("test") else None
        table = conversion_table(str(var.options["table"])) if var.options.get("table") else None
        if table is not None:   # the table holds UNIT submission values
            unit = unit.map({u: self._unit_term(u) for u in unit.unique()}).astype(object)
        out, problem = standardize(result, unit, test, table)
        bad = problem != ""
        for message, rows in problem[bad].groupby(problem[bad]).groups.items():
            _issue_once(ctx, var.name, rows, (result[rows] + " " + unit[rows]).str.strip(), message)
        return out[part]

    @staticmethod
    def _unit_term(value: str) -> str:
        return (metadata.codelist("UNIT").lookup(value) or value) if value else ""


class NormalRangeIndicator(Algorithm):
    """{nrind: LBSTRESC, low: LBSTNRLO, high: LBSTNRHI, codelist: NRIND} (see
    `normal_range_indicator`); all three are variables mapped above."""
    options = ("low", "high", "codelist")

    def run(self, ctx, var):
        result = ctx.column(var.arg)
        empty = pd.Series(np.nan, index=result.index)
        low = ctx.column(var.options["low"]) if var.options.get("low") else empty
        high = ctx.column(var.options["high"]) if var.options.get("high") else empty
        return _check_ct(normal_range_indicator(result, low, high), var.options.get("codelist"))


class LastObservationBeforeExposure(Algorithm):
    """{lobxfl: LBDTC, same_day: "<condition>", codelist: NY}: --LOBXFL per USUBJID and --TESTCD
    (see `last_before_exposure`). "With a result" = --ORRES not empty and --STAT not NOT DONE.
    The reference is DM.RFXSTDTC, the first exposure to protocol-specified treatment (the
    engine hands it to algorithms as `ref_exposure`). `same_day` is a
    pandas condition over variables mapped above (e.g. "VSTPT == 'PRE-INFUSION'") for records
    on the reference date when a time is missing."""
    options = ("same_day", "codelist")

    def run(self, ctx, var):
        prefix = var.arg[:-3]
        out = ctx.out
        index = ctx.src.index
        needed = [f"{prefix}TESTCD", f"{prefix}ORRES", var.arg]
        if missing := [n for n in needed if n not in out.columns]:
            raise ConfigError(f"lobxfl needs {', '.join(missing)} mapped above {var.name}", field=var.name,
                              hint="order the spec's variables so these come first")
        if ctx.ref_exposure is None:
            return pd.Series("", index=index, dtype=object)
        ref = out["USUBJID"].map(ctx.ref_exposure)
        has = out[f"{prefix}ORRES"].fillna("").astype(str) != ""
        if f"{prefix}STAT" in out.columns:
            has &= out[f"{prefix}STAT"] != "NOT DONE"
        same_day = pd.Series(False, index=index)
        if var.options.get("same_day"):
            frame = ctx.src.drop(columns=[c for c in out.columns if c in ctx.src.columns]).join(out)
            same_day = frame.eval(str(var.options["same_day"]), engine="python").astype(bool)
        flag = last_before_exposure(out["USUBJID"], out[f"{prefix}TESTCD"], out[var.arg], ref, has, same_day)
        return _check_ct(flag, var.options.get("codelist"))


class PairedTerm(Algorithm):
    """{ct_paired: LBTESTCD, codelist: LBTEST}: the term of `codelist` with the same NCI C-code
    as the variable's value in its own codelist (SDTMIG metadata), e.g. INTLK6 -> Interleukin 6.
    `map` covers sponsor-defined codes that have no CT pair."""
    options = ("codelist", "map")

    def run(self, ctx, var):
        codes = ctx.column(var.arg).fillna("").astype(str)
        meta = metadata.domain(var.arg[:2]).var(var.arg)
        source = metadata.codelist(meta.codelists[0]) if meta.codelists else None
        target = metadata.codelist(str(var.options["codelist"]))
        by_ccode = {c: v for v, c in target.terms.items()}
        mapping = {str(k): str(v) for k, v in (var.options.get("map") or {}).items()}
        table = {}
        for code in codes.unique():
            if code in mapping:
                table[code] = mapping[code]
            elif source is not None and code in source.terms and source.terms[code] in by_ccode:
                table[code] = by_ccode[source.terms[code]]
            else:
                table[code] = "" if code == "" else None
        out = codes.map(table)
        missing = out.isna()
        _issue_once(ctx, var.name, out.index[missing], codes[missing],
                    f"no {target.short} term pairs with this code; add it to the spec's map")
        return out.fillna("").astype(object)


class SplitCT(Algorithm):
    """{split_ct: testcd, codelist: VSTESTCD}: for `split:` specs, the item's value under this
    key through the codelist (or `map`), so split test codes and units are checked like
    assign_ct values."""
    options = ("codelist", "map")

    def run(self, ctx, var):
        per_item = {k: str(item.get(var.arg, "")) for k, item in enumerate(ctx.spec_split)}
        values = ctx.src["_ITEM"].map(per_item).astype(object)
        return _to_ct(ctx, var, values)


class Number(Algorithm):
    """{number: CKLLOQ} or {number: CKTPT, map: {PRE: 1, D1: 2}}: a Num variable (float64) from
    a field or variable; text that is not a number (after `map`) is reported and left empty."""
    options = ("map",)

    def fields(self, var):
        return _raw_refs(var, var.arg)

    def run(self, ctx, var):
        text = ctx.column(var.arg).fillna("").astype(str).str.strip()
        mapping = var.options.get("map")
        if mapping is not None:
            mapping = {str(k): "" if v is None else str(v) for k, v in mapping.items()}
            unmapped = (text != "") & ~text.isin(list(mapping))
            _issue_once(ctx, var.name, text.index[unmapped], text[unmapped], "code has no number in the spec's map")
            text = text.map(mapping).fillna("")
        values = pd.to_numeric(text, errors="coerce")
        bad = (text != "") & values.isna()
        _issue_once(ctx, var.name, text.index[bad], text[bad], "not a number; left empty")
        return values.astype("float64")


EXTRA = {
    "standardize": Standardize(),
    "nrind": NormalRangeIndicator(),
    "lobxfl": LastObservationBeforeExposure(),
    "ct_paired": PairedTerm(),
    "split_ct": SplitCT(),
    "number": Number(),
}
