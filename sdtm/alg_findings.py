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
import pyarrow as pa
import pyarrow.compute as pc

from clinpipe.errors import ConfigError
from clinpipe.paths import mappings_dir
from clinpipe.yamlio import load_yaml
from edc.export import format_number
from edc.read import COMMA_DECIMAL
from sdtm import metadata
from sdtm.algorithms import Algorithm, evaluate
from sdtm.distinct import Encoded, align, combine, distinct_args, encode, expand, per_distinct

# A result that is a number, possibly with a comparison operator: "12.5", "<5", ">= 1000".
# Digits are ASCII digits ('١٢' is text, not 12); spaces are any Unicode space.
_NUMBER = re.compile(r"^\s*(<=|>=|<|>)?\s*([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*$")
# The same pattern for pyarrow (RE2) on ASCII text: Python's \s is these ASCII characters
# there; text with other characters goes through _NUMBER.
_WS = r"[\t\n\v\f\r\x1c-\x1f ]*"
_NUMBER_RE2 = (rf"^{_WS}(?P<op><=|>=|<|>)?{_WS}"
               rf"(?P<num>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?){_WS}$")
_PARTS = ("STRESC", "STRESN", "STRESU")
_COMMA_NUMBER = rf"(?:<=|>=|<|>)?\s*{COMMA_DECIMAL}"   # the reader's decimal comma, with a limit's operator
_OPS = ("", "<", "<=", ">", ">=")


# -- helpers -----------------------------------------------------------------------------------

def parse_results(text: pd.Series) -> pd.DataFrame:
    """Columns `op` ('' for a plain number, '<', '<=', '>', '>=') and `num` (float, NaN when
    the text is not a number) for each result text."""
    return per_distinct(_parse_texts, text)


def _parse_texts(text: pd.Series) -> pd.DataFrame:
    """parse_results on (distinct) texts: the regex through pyarrow, NaN where no match."""
    text = text.fillna("").astype(str)
    values = text.to_numpy(dtype=object)
    op = np.full(len(values), np.nan, dtype=object)
    num = np.full(len(values), np.nan, dtype=object)
    arr = pa.array(values, type=pa.string())
    ascii_ = pc.string_is_ascii(arr).to_numpy(zero_copy_only=False)
    if ascii_.any():
        found = pc.extract_regex(arr.filter(pa.array(ascii_)), pattern=_NUMBER_RE2)
        hit = found.is_valid().to_numpy(zero_copy_only=False)
        where = np.flatnonzero(ascii_)[hit]
        found = found.filter(pa.array(hit))
        op[where] = found.field("op").to_numpy(zero_copy_only=False)
        num[where] = found.field("num").to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(~ascii_):
        if m := _NUMBER.search(values[i]):
            op[i], num[i] = m.group(1), m.group(2)
    op = pd.Series(op, index=text.index)
    op[op.isna()] = ""        # no operator, or no number at all
    return pd.DataFrame({"op": op.astype(object),
                         "num": _to_number(pd.Series(num, index=text.index))},
                        index=text.index)


def _to_number(texts: pd.Series) -> pd.Series:
    """The numbers of number texts (NaN elsewhere), with to_numeric's dtype (int64 when all
    are whole) and its NaN for a number beyond float range (1e400); floats by float() per
    text, correctly rounded, where to_numeric's fast parser can be off in the last digit."""
    parsed = pd.to_numeric(texts, errors="coerce")
    if parsed.dtype.kind != "f":
        return parsed
    return texts.where(parsed.notna()).astype("float64")


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


def _check_ct(values: pd.Series, codelist: str | None, distinct=None) -> pd.Series:
    """Values an algorithm emits are CT terms by construction; fail loudly if one is not.
    `distinct`: the values present, when the algorithm knows them without a pass over rows."""
    if codelist:
        cl = metadata.codelist(str(codelist))
        present = values.unique() if distinct is None else distinct
        bad = sorted({v for v in present if v and cl.lookup(v) != v})
        if bad:
            raise ConfigError(f"values {bad} are not terms of codelist {cl.short} ({cl.code})")
    return values


def _to_ct(ctx, var, values: pd.Series) -> pd.Series:
    """Values -> submission values: `map` first, then the codelist (value, synonym, NCI term);
    anything else is reported and kept upper-cased (as assign_ct does)."""
    mapping = {str(k): str(v) for k, v in (var.options.get("map") or {}).items()}
    cl = metadata.codelist(str(var.options["codelist"])) if "codelist" in var.options else None
    table = {}
    for value in pd.unique(values.to_numpy()):
        if value == "":
            table[value] = ""
        elif value in mapping:
            table[value] = mapping[value]
        elif cl is not None and (hit := cl.lookup(value)):
            table[value] = hit
        else:
            table[value] = None
    out = values.map(table).astype(object)
    missing = out.isna()
    if missing.any():
        _issue_once(ctx, var.name, out.index[missing], values[missing],
                    "value has no controlled term; add it to the spec's map")
        out[missing] = values[missing].str.upper()
    return out


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
    """STRESC / STRESN / STRESU for each result, and a problem text per record ('' if none),
    computed once per distinct (result, unit, test) (see `_standardize_rows`)."""
    if table is None:
        return per_distinct(lambda r, u: _standardize_rows(r, u, None, None), result, unit)
    return per_distinct(lambda r, u, t: _standardize_rows(r, u, t, table), result, unit, test)


def _standardize_rows(result: pd.Series, unit: pd.Series, test: pd.Series | None = None,
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
    # "1,5": a number to the site, text to SDTM; kept as collected, and queried
    comma = ~numeric & result.str.fullmatch(_COMMA_NUMBER).fillna(False).astype(bool)
    problem[comma] = ("result looks like a number with a decimal comma (or a thousands "
                      "separator): kept as text, --STRESN empty; query the site")
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
    return _nrind(encode(result), low, high)[0]


_NRIND = np.array(["", "NORMAL", "LOW", "HIGH"], dtype=object)


def _nrind(result: Encoded, low: pd.Series, high: pd.Series) -> tuple[pd.Series, list[str]]:
    """normal_range_indicator of an encoded result (parsed once per distinct text), and the
    indicator values that occur."""
    index = result.index
    parsed = _parse_texts(result.distinct())
    ops = parsed["op"].to_numpy()
    op = np.select([ops == o for o in _OPS], list(range(len(_OPS))), -1)[result.codes]
    x = parsed["num"].to_numpy()[result.codes]

    def bound(values: pd.Series) -> np.ndarray:
        values = pd.to_numeric(values, errors="coerce")
        return (values if values.index.equals(index) else values.reindex(index)).to_numpy()

    low, high = bound(low), bound(high)
    has_lo, has_hi, has_x = ~pd.isna(low), ~pd.isna(high), ~pd.isna(x)
    exact = has_x & (op == 0)
    below = has_x & ((op == 1) | (op == 2))
    above = has_x & ((op == 3) | (op == 4))
    with np.errstate(invalid="ignore"):
        is_low = (exact & has_lo & (x < low)) \
            | (below & has_lo & ((x <= low) & (op == 1) | (x < low) & (op == 2)))
        is_high = (exact & has_hi & (x > high)) \
            | (above & has_hi & ((x >= high) & (op == 3) | (x > high) & (op == 4)))
        is_normal = (exact & (has_lo | has_hi) & ~is_low & ~is_high) \
            | (below & ~has_lo & has_hi & (x <= high)) \
            | (above & ~has_hi & has_lo & (x >= low))
    label = np.zeros(len(index), dtype=np.int8)
    label[is_normal] = 1
    label[is_low] = 2
    label[is_high] = 3
    present = [str(v) for v in _NRIND[np.unique(label)]]
    return pd.Series(_NRIND[label], index=index, dtype=object), present


def last_before_exposure(subject: pd.Series, test: pd.Series, dtc: pd.Series, ref: pd.Series,
                         has_result: pd.Series, same_day: pd.Series) -> pd.Series:
    """'Y' on the last record with a result before the reference date/time, per subject and
    test (SDTMIG 3.4 --LOBXFL), as sdtm.oak's derive_blfl decides "before":
    - a full date before the reference date;
    - the reference date, both times known, the time before the reference time;
    - the reference date, a time missing on either side: only where `same_day` says so (a
      pre-dose timepoint), since the data cannot tell.
    Partial dates are never flagged. Ties on --DTC: the later record in collection order."""
    index = dtc.index
    return _last_before(align(encode(subject), index), align(encode(test), index), encode(dtc),
                        align(encode(ref), index), _mask(has_result, index), _mask(same_day, index))


def _mask(values: pd.Series, index: pd.Index) -> np.ndarray:
    return (values if values.index.equals(index) else values.reindex(index, fill_value=False)) \
        .to_numpy(dtype=bool)


def _date_parts(values: Encoded) -> tuple[pd.Series, pd.Series]:
    text = values.distinct().fillna("").astype(str)
    return text.str[:10], text.str[11:16]


def _ranks(*parts: pd.Series) -> list[np.ndarray]:
    """Ranks of texts in one order over all the parts, so text comparisons become integer ones."""
    codes, _ = pd.factorize(np.concatenate([p.to_numpy(dtype=object) for p in parts]), sort=True)
    cuts = np.cumsum([len(p) for p in parts])[:-1]
    return np.split(codes, cuts)


def _last_before(subject: Encoded, test: Encoded, dtc: Encoded, ref: Encoded, has_result: np.ndarray,
                 same_day: np.ndarray) -> pd.Series:
    """last_before_exposure on encoded columns (aligned to dtc's rows): the date and time
    texts are cut and checked once per distinct value, compared as ranks per row."""
    index = dtc.index
    (d, t), (rd, rt) = _date_parts(dtc), _date_parts(ref)
    pattern = r"^\d{4}-\d{2}-\d{2}$"
    dc, rc = dtc.codes, ref.codes
    full = d.str.match(pattern).to_numpy(dtype=bool)[dc] & rd.str.match(pattern).to_numpy(dtype=bool)[rc]
    timed = (t.str.len() == 5).to_numpy()[dc] & (rt.str.len() == 5).to_numpy()[rc]
    d_rank, rd_rank = _ranks(d, rd)
    t_rank, rt_rank = _ranks(t, rt)
    dr, rdr = d_rank[dc], rd_rank[rc]
    same = dr == rdr
    before = full & has_result & ((dr < rdr) | (same & timed & (t_rank[dc] < rt_rank[rc]))
                                  | (same & ~timed & same_day))
    # groups with a missing subject or test are no group (groupby drops them)
    before &= ~pd.isna(subject.uniques)[subject.codes] & ~pd.isna(test.uniques)[test.codes]
    rows = np.flatnonzero(before)
    out = np.full(len(index), "", dtype=object)
    if len(rows):
        text = dtc.distinct().fillna("").astype(str)
        when = pd.factorize(text.to_numpy(dtype=object), sort=True)[0][dc[rows]]
        group = combine([Encoded(subject.codes[rows], subject.uniques, subject.dtype, index[rows]),
                         Encoded(test.codes[rows], test.uniques, test.dtype, index[rows])]).codes
        # per subject and test, the latest --DTC, ties to the later record
        order = np.lexsort((rows, when, group))
        ordered = group[order]
        last = np.r_[ordered[1:] != ordered[:-1], True]
        out[rows[order[last]]] = "Y"
    return pd.Series(out, index=index, dtype=object)


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
        result = ctx.encoded(var.arg)
        index = result.index
        unit_ref, test_ref = var.options.get("unit"), var.options.get("test")
        unit = ctx.encoded(unit_ref) if unit_ref else None
        test = ctx.encoded(test_ref) if test_ref else None
        table = conversion_table(str(var.options["table"])) if var.options.get("table") else None
        # --STRESC, --STRESN and --STRESU of one result are one computation: the first of them
        # computes it (and reports its problems), the others take their part of it
        key = ("standardize", var.arg, unit_ref, test_ref, var.options.get("table"))
        hit = ctx.memo.get(key)
        inputs = (result, unit, test)
        if hit is None or any(a is not b for a, b in zip(hit[0], inputs)):
            hit = ctx.memo[key] = (inputs, *self._compute(ctx, var, result, unit, test, table))
        codes, out = hit[1], hit[2]
        return expand(out[part], codes, index)

    def _compute(self, ctx, var, result: Encoded, unit: Encoded | None, test: Encoded | None,
                 table: ConversionTable | None):
        index = result.index
        if unit is None:
            unit = Encoded(np.zeros(len(index), dtype=np.intp), np.array([""], dtype=object), object, index)
        unit = align(unit, index)
        # raw units as text (UNIT submission values with a table), one look-up per distinct unit
        names = unit.distinct().fillna("").astype(str)
        if table is not None:   # the table holds UNIT submission values
            names = names.map({u: self._unit_term(u) for u in names.unique()})
        unit = Encoded(unit.codes, names.to_numpy(dtype=object), object, index)
        columns = [result, unit] + ([align(test, index)] if table is not None else [])
        combo = combine(columns)
        args = distinct_args(columns, combo)
        out, problem = _standardize_rows(*args, table) if table is not None else _standardize_rows(*args)
        bad = (problem != "").to_numpy()[combo.codes]
        if bad.any():
            rows = np.flatnonzero(bad)
            labels = index[rows]
            problem = pd.Series(problem.to_numpy()[combo.codes[rows]], index=labels)
            units = pd.Series(unit.values()[rows], index=labels)
            texts = pd.Series(result.values()[rows], index=labels, dtype=result.dtype)
            for message, at in problem.groupby(problem).groups.items():
                _issue_once(ctx, var.name, at, (texts[at] + " " + units[at]).str.strip(), message)
        return combo.codes, out

    @staticmethod
    def _unit_term(value: str) -> str:
        return (metadata.codelist("UNIT").lookup(value) or value) if value else ""


class NormalRangeIndicator(Algorithm):
    """{nrind: LBSTRESC, low: LBSTNRLO, high: LBSTNRHI, codelist: NRIND} (see
    `normal_range_indicator`); all three are variables mapped above."""
    options = ("low", "high", "codelist")

    def run(self, ctx, var):
        result = ctx.encoded(var.arg)
        empty = pd.Series(np.nan, index=result.index)
        low = ctx.column(var.options["low"]) if var.options.get("low") else empty
        high = ctx.column(var.options["high"]) if var.options.get("high") else empty
        flags, present = _nrind(result, low, high)
        return _check_ct(flags, var.options.get("codelist"), present)


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
        dtc = ctx.encode_column(var.arg, out[var.arg])
        rows = dtc.index
        subject = align(ctx.encode_column("USUBJID", out["USUBJID"]), rows)
        result = align(ctx.encode_column(f"{prefix}ORRES", out[f"{prefix}ORRES"]), rows)
        has = result.values((result.distinct().fillna("").astype(str) != "").to_numpy())
        if f"{prefix}STAT" in out.columns:
            stat = align(ctx.encode_column(f"{prefix}STAT", out[f"{prefix}STAT"]), rows)
            has &= stat.values((stat.distinct() != "NOT DONE").to_numpy())
        same_day = np.zeros(len(rows), dtype=bool)
        if var.options.get("same_day"):
            same_day = _mask(evaluate(ctx, str(var.options["same_day"])), rows)
        test = align(ctx.encode_column(f"{prefix}TESTCD", out[f"{prefix}TESTCD"]), rows)
        flag = _last_before(subject, test, dtc, exposure_ref(subject, ctx.ref_exposure), has, same_day)
        return _check_ct(flag, var.options.get("codelist"), ["Y"] if (flag == "Y").any() else [])


def exposure_ref(subject: Encoded, ref_exposure: pd.Series) -> Encoded:
    """Each record's reference date (RFXSTDTC of its USUBJID), looked up once per subject."""
    ref = subject.distinct().map(ref_exposure)
    return Encoded(subject.codes, ref.to_numpy(), ref.dtype, subject.index)


class PairedTerm(Algorithm):
    """{ct_paired: LBTESTCD, codelist: LBTEST}: the term of `codelist` with the same NCI C-code
    as the variable's value in its own codelist (SDTMIG metadata), e.g. INTLK6 -> Interleukin 6.
    `map` covers sponsor-defined codes that have no CT pair."""
    options = ("codelist", "map")

    def run(self, ctx, var):
        codes = ctx.encoded(var.arg)
        index = codes.index
        codes = codes.distinct().fillna("").astype(str)
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
        if missing.any():
            per_row = ctx.encoded(var.arg)
            rows = missing.to_numpy()[per_row.codes]
            _issue_once(ctx, var.name, index[rows], codes.to_numpy()[per_row.codes[rows]],
                        f"no {target.short} term pairs with this code; add it to the spec's map")
        return expand(out.fillna("").astype(object), ctx.encoded(var.arg).codes, index)


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
        enc = ctx.encoded(var.arg)
        index, codes = enc.index, enc.codes
        text = enc.distinct().fillna("").astype(str).str.strip()     # per distinct value

        def report(bad: pd.Series, message: str) -> None:
            rows = bad.to_numpy()[codes]
            if rows.any():
                _issue_once(ctx, var.name, index[rows], text.to_numpy()[codes[rows]], message)

        mapping = var.options.get("map")
        if mapping is not None:
            mapping = {str(k): "" if v is None else str(v) for k, v in mapping.items()}
            report((text != "") & ~text.isin(list(mapping)), "code has no number in the spec's map")
            text = text.map(mapping).fillna("")
        values = pd.to_numeric(text, errors="coerce")
        report((text != "") & values.isna(), "not a number; left empty")
        return expand(values.astype("float64"), codes, index)


EXTRA = {
    "standardize": Standardize(),
    "nrind": NormalRangeIndicator(),
    "lobxfl": LastObservationBeforeExposure(),
    "ct_paired": PairedTerm(),
    "split_ct": SplitCT(),
    "number": Number(),
}
