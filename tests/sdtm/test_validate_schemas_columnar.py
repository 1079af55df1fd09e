"""The columnar schema checks (issue 18) judge every value as the per-cell checks did, whatever
the column's dtype: string[pyarrow] (what `validate` hands over), object str (read_xpt, old
callers) or string[python]."""
from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sdtm.metadata import domain
from sdtm.validate.findings import COLUMNS
from sdtm.validate.schemas import _ISO_PATTERNS, _iso_ok, build_schema, schema_findings

# ---- the ISO 8601 check as it was written before, per cell with Python's re (the reference) ----
_DATE = r"\d{4}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?)?"
_TIME = r"T(?:[01]\d|2[0-3])(?::[0-5]\d(?::[0-5]\d(?:\.\d+)?)?)?"
_DATETIME = rf"{_DATE}(?:(?<=\d{{4}}-\d\d-\d\d){_TIME})?"
_DURATION = (r"-?P(?=\d|T\d)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?"
             r"(?:\d+(?:\.\d+)?D)?(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?")
_REFERENCE = {
    "ISO 8601 datetime or interval": rf"{_DATETIME}(?:/{_DATETIME})?",
    "ISO 8601 duration": _DURATION,
    "ISO 8601 duration or interval": rf"{_DURATION}|{_DATETIME}/{_DATETIME}",
}


def _real_day(text: str) -> bool:
    """A day of the calendar (years 0001-9999), as Python's datetime has it."""
    import datetime as dt

    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _reference_iso_ok(values: list[str], pattern: str) -> np.ndarray:
    r"""ASCII text of the pattern's shape whose complete dates are real days (non-ASCII digits
    are digits to Python's \d, not to ISO 8601)."""
    text = pd.Series(values, dtype=object)
    shape = text.str.fullmatch(pattern).fillna(False).astype(bool) & text.map(str.isascii)
    days = text.str.extractall(r"(?:^|/)(\d{4}-\d\d-\d\d)")[0]
    bad_day = ~days.map(_real_day).astype(bool)
    bad_rows = bad_day[bad_day].index.get_level_values(0).unique()
    return (shape & ~text.index.isin(bad_rows)).to_numpy()


def _sample(n: int = 20000, seed: int = 18) -> list[str]:
    """Dates, datetimes, intervals and durations, right and wrong, plus some noise."""
    rnd = random.Random(seed)
    alphabet = "0123456789" * 3 + "PTYMWDHS.-/:"

    def dt() -> str:
        s = f"{rnd.choice([rnd.randint(0, 9999), rnd.randint(1990, 2030)]):04d}"
        for fmt, hi, p in (("-{:02d}", 14, .85), ("-{:02d}", 33, .8), ("T{:02d}", 25, .6),
                           (":{:02d}", 61, .6), (":{:02d}", 61, .5)):
            if rnd.random() >= p:
                break
            s += fmt.format(rnd.randint(0, hi))
        return s + (f".{rnd.randint(0, 999)}" if rnd.random() < .2 else "")

    def dur() -> str:
        s = rnd.choice(["", "-"]) + "P"
        for unit in "YMWD":
            if rnd.random() < .4:
                s += f"{rnd.randint(0, 30)}{'.5' if rnd.random() < .2 else ''}{unit}"
        if rnd.random() < .6:
            s += "T" + "".join(f"{rnd.randint(0, 70)}{u}" for u in "HMS" if rnd.random() < .4)
        return s

    out = set()
    while len(out) < n:
        kind = rnd.random()
        v = (dt() if kind < .35 else f"{dt()}/{dt()}" if kind < .5 else dur() if kind < .8
             else f"{dur()}/{dt()}" if kind < .85 else "".join(rnd.choices(alphabet, k=rnd.randint(0, 14))))
        if rnd.random() < .4 and v:  # one slip of the keyboard
            i = rnd.randrange(len(v))
            v = v[:i] + rnd.choice(["", rnd.choice(alphabet)]) + v[i + 1:]
        out.add(v)
    # non-ASCII digits are digits to Python's \d, but no ISO 8601 text
    out |= {"２０２５", "２０２５-01-02", "2025-٠١-02", "2025-01-02T１０", "P１D", "2025-01-02\u00a0"}
    return sorted(out)


@pytest.mark.parametrize("domain_name", sorted(_ISO_PATTERNS))
def test_iso_check_accepts_what_the_per_cell_check_accepted(domain_name):
    values = _sample()
    got = _iso_ok(pa.array(values, type=pa.large_string()), _ISO_PATTERNS[domain_name])
    want = _reference_iso_ok(values, _REFERENCE[domain_name])
    diff = [v for v, g, w in zip(values, got, want) if g != w]
    assert not diff, diff[:20]
    assert want.sum() > 1000  # the sample holds plenty of valid values, not only noise


def test_lookaround_free_patterns_match_the_reference_with_python_re():
    # the same patterns serve Python's re for non-ASCII values
    values = _sample(5000, seed=1)
    for name, pattern in _ISO_PATTERNS.items():
        new, old = re.compile(pattern), re.compile(_REFERENCE[name])
        assert [bool(new.fullmatch(v)) for v in values] == [bool(old.fullmatch(v)) for v in values], name


# ---- the same findings, whatever the Char columns' dtype ----------------------------------

def _faulty_ae() -> pd.DataFrame:
    """An AE with one of every record-level fault the schema checks, and clean records."""
    req_exp = [v for v in domain("AE").variables if v.core in ("Req", "Exp")]
    n = 8
    df = pd.DataFrame({v.name: ([1.0] * n if v.type == "Num" else [""] * n) for v in req_exp})
    return df.assign(
        STUDYID="S1", DOMAIN=["AE"] * 7 + ["CM"], USUBJID=[f"S1-00{i // 3}" for i in range(n)],
        AESEQ=[1.0, 2.0, 3.0, 1.0, 2.0, 2.0, -1.0, 1.5],
        AETERM=["Headache", " ", "x" * 201, "Nausea", "\t", "Rash", "é" * 150, "Cough"],
        AEDECOD="Headache", AESER=["Y", "N", "", "MAYBE", "Y", "y", "N", " "],
        EPOCH=["TREATMENT", "WANDERING", "", "SCREENING", "TREATMENT", "x", "", ""],
        AESTDTC=["2025-01-02", "2025-02-30", "", "2025-13-01", "2025-01-02T10:15", "2024-02-29",
                 "2025-01-02/2025-01-05", "02JAN2025"],
        AESTDY=[1.0, 0.0, np.nan, 2.0, -3.0, 0.0, 5.0, 6.0], AEENDY=3.0)


def _as(df: pd.DataFrame, dtype: str) -> pd.DataFrame:
    char = [c for c in df.columns if df[c].dtype == object]
    return df.astype({c: dtype for c in char})


def _sorted(found: pd.DataFrame) -> pd.DataFrame:
    return found[COLUMNS].astype(str).sort_values(COLUMNS).reset_index(drop=True)


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "string[python]"])
def test_same_findings_for_object_and_string_columns(dtype):
    df = _faulty_ae()
    want = _sorted(schema_findings({"AE": df}))
    assert set(want["RULE"]) >= {"SCH-REQ", "SCH-LEN", "SCH-CT", "SCH-CTEXT", "SCH-ISO8601", "SCH-DOMAIN",
                                 "SCH-KEY", "SCH-SEQ", "SCH-DY0"}
    pd.testing.assert_frame_equal(_sorted(schema_findings({"AE": _as(df, dtype)})), want)


def test_findings_name_the_failed_records():
    found = schema_findings({"AE": _as(_faulty_ae(), "string[pyarrow]")})
    by_rule = {r: sorted(zip(g["SEQ"], g["VALUE"])) for r, g in found.groupby("RULE")}
    assert by_rule["SCH-REQ"] == [(2.0, "\t"), (2.0, " ")]
    assert by_rule["SCH-LEN"] == [(3.0, "x" * 201)]   # 150 two-byte characters are not too long
    assert by_rule["SCH-CT"] == [(1.0, "MAYBE"), (2.0, "y")]
    assert by_rule["SCH-CTEXT"] == [(2.0, "WANDERING"), (2.0, "x")]
    assert by_rule["SCH-ISO8601"] == [(1.0, "2025-13-01"), (1.5, "02JAN2025"), (2.0, "2025-02-30")]
    assert by_rule["SCH-DOMAIN"] == [(1.5, "CM")]
    assert by_rule["SCH-DY0"] == [(2.0, "0.0"), (2.0, "0.0")]
    assert by_rule["SCH-SEQ"] == [(-1.0, "-1.0"), (1.5, "1.5")]


def test_numeric_results_pass_a_result_codelist_and_coded_ones_are_checked():
    # LBSTRESC's codelist covers coded results; a number (as pandas reads one), also one with
    # a limit ('<5', '>= 1000': below or above what the assay measures), is not coded
    lb = pd.DataFrame({"STUDYID": "S1", "DOMAIN": "LB", "USUBJID": "S1-001",
                       "LBSEQ": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "LBTESTCD": "HGB", "LBTEST": "Hemoglobin",
                       "LBSTRESC": ["5.2", "1e3", "<5", ">= 1000", "NEGATIVE", "NEGATIVE-ISH"]})
    found = schema_findings({"LB": _as(lb, "string[pyarrow]")})
    assert found[found["VARIABLE"] == "LBSTRESC"]["VALUE"].tolist() == ["NEGATIVE-ISH"]


def test_mixed_object_column_and_numbers_in_char():
    # third-party frames before normalisation: text and numbers in one object column
    found = schema_findings({"AE": _faulty_ae().assign(AESTDY=["abc", 2.0, None, 1.0, 1.0, 1.0, 1.0, 1.0],
                                                      AETERM=[1.0, "Rash", None, "x", "y", "z", "w", "v"])})
    typ = found[found["RULE"] == "SCH-TYPE"]
    assert sorted(typ[["VARIABLE", "SEQ"]].values.tolist()) == [["AESTDY", 1.0], ["AETERM", 1.0]]


def test_caller_frame_is_not_changed():
    df = _as(_faulty_ae(), "string[pyarrow]")
    df.index = pd.Index(range(100, 100 + len(df)))
    before = df.copy()
    schema_findings({"AE": df})
    pd.testing.assert_frame_equal(df, before)


def test_schema_on_its_own_reports_pandera_failure_cases():
    df = _as(_faulty_ae(), "string[pyarrow]")
    schema = build_schema("AE", list(df.columns))
    with pytest.raises(Exception) as info:
        schema.validate(df, lazy=True)
    cases = info.value.failure_cases
    iso = cases[(cases["column"] == "AESTDTC") & (cases["check"] == "SCH-ISO8601")]
    assert sorted(iso["index"].astype(int)) == [1, 3, 7]


def test_all_empty_and_absent_columns():
    df = _as(_faulty_ae(), "string[pyarrow]").assign(AESER="", EPOCH="", AESTDTC="")
    found = schema_findings({"AE": df})
    assert not set(found["VARIABLE"]) & {"AESER", "EPOCH", "AESTDTC"}
    # a Perm variable the frame lacks has nothing to check; a Req one is reported missing
    schema = build_schema("AE", ["STUDYID"])
    assert "AELOC" not in schema.columns and {"AETERM", "AESER"} <= set(schema.columns)
