"""Random input against simple oracles (issue 13, item 6): the raw-date, ISO 8601, study-day,
time and number parsers. Each property draws batches of 100-200 values (see CASES for how many
batches); derandomized, so every run sees the same cases.

The oracles are written from the rules, not from the code: Python's `datetime.date` decides
which days exist (years 0001-9999), `float()` on text of the characters `0-9 + - . e E` decides
what a number is. The inputs mix the valid shapes with what sites and exports get wrong:
non-ASCII digits, year 0000, month 13, day 32, times such as 25:99, `inf`, `1_000`, decimal
commas, dates outside pandas' 1677-2262 timestamp range.
"""
from __future__ import annotations

import datetime as dt
import math
import os

import numpy as np
import pandas as pd
import pyarrow
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edc.dates import MONTHS, iso_to_raw, raw_to_iso
from edc.read import parse_numbers
from sdtm import algorithms  # noqa: F401  (registers the algorithms before alg_findings loads)
from sdtm.alg_findings import parse_results
from sdtm.dates import combine, day_numbers, study_day, valid_time
from sdtm.validate.schemas import _ISO_PATTERNS, _iso_ok

# `make test` draws 25 batches per property (about 3 x 10^4 values in all, some 20 s); the
# thorough run draws 500 (about 6 x 10^5 values, some 6 minutes on a 2-core machine):
#   CLINPIPE_RANDOM_CASES=thorough .venv/bin/python -m pytest tests/edc/test_parsers_random.py
_THOROUGH = os.environ.get("CLINPIPE_RANDOM_CASES") == "thorough"
CASES = settings(max_examples=500 if _THOROUGH else 25, derandomize=True, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BATCH = {"min_size": 100, "max_size": 200}

ASCII_DIGITS = "0123456789"
OTHER_DIGITS = "٠١٢٣٤٥٦٧٨٩०१२३४५६७८९０１２"   # Arabic-Indic, Devanagari, full-width
digits = st.sampled_from(ASCII_DIGITS * 6 + OTHER_DIGITS)


def _number_text(n: int, width: int) -> st.SearchStrategy[str]:
    return st.one_of(st.just(str(n).zfill(width)), st.text(digits, min_size=1, max_size=width + 1))


# -- raw dates: DD MON YYYY, UN/UNK for unknown parts ----------------------------------------

def oracle_raw_to_iso(text: str) -> str:
    parts = text.strip().upper().split(" ")
    if len(parts) != 3:
        return ""
    day, mon, year = parts
    if not (len(year) == 4 and all(c in ASCII_DIGITS for c in year)) or year == "0000":
        return ""
    if mon in ("UN", "UNK"):
        return year if day in ("UN", "UNK") else ""
    if mon not in MONTHS:
        return ""
    month = MONTHS.index(mon) + 1
    if day in ("UN", "UNK"):
        return f"{year}-{month:02d}"
    if not (1 <= len(day) <= 2 and all(c in ASCII_DIGITS for c in day)):
        return ""
    try:
        return dt.date(int(year), month, int(day)).isoformat()
    except ValueError:
        return ""


raw_day = st.one_of(st.integers(0, 39).flatmap(lambda d: _number_text(d, 2)),
                    st.sampled_from(["UN", "UNK", "un", "", "1 "]))
raw_month = st.one_of(st.sampled_from(MONTHS + ("UN", "UNK", "FEB", "mar", "Sep", "SEPT", "13", "")),
                      st.text(min_size=1, max_size=3))
raw_year = st.one_of(st.integers(0, 9999).flatmap(lambda y: _number_text(y, 4)),
                     st.sampled_from(["0000", "1500", "2262", "2263", "1677", "99999", "25"]))
raw_date = st.one_of(
    st.tuples(raw_day, raw_month, raw_year, st.sampled_from([" ", " ", " ", "  ", "-", "\t"]))
      .map(lambda t: t[3].join(t[:3])),
    st.dates().map(lambda d: f"{d.day:02d} {MONTHS[d.month - 1]} {d.year:04d}"),
    st.text(max_size=14),
)


@CASES
@given(st.lists(raw_date, **BATCH))
def test_raw_dates_parse_as_the_calendar_says(texts):
    for text in texts:
        assert raw_to_iso(text) == oracle_raw_to_iso(text), text


# -- ISO 8601 dates back to the typed form -----------------------------------------------------

iso_date = st.one_of(
    st.dates().map(dt.date.isoformat),
    st.dates().map(lambda d: d.isoformat()[:7]),
    st.dates().map(lambda d: d.isoformat()[:4]),
    st.tuples(raw_year, st.integers(0, 14).flatmap(lambda m: _number_text(m, 2)),
              st.integers(0, 33).flatmap(lambda d: _number_text(d, 2))).map("-".join),
    st.text(max_size=12),
)


@CASES
@given(st.lists(iso_date, **BATCH))
def test_iso_dates_give_the_typed_text_or_a_clear_error(texts):
    for text in texts:
        try:
            raw = iso_to_raw(text)
        except ValueError as exc:
            assert "not an ISO 8601 date" in str(exc)
            continue
        back = raw_to_iso(raw)
        # a real day (or month, or year) comes back unchanged; '2025-02-30' is typed as
        # '30 FEB 2025' (a date the site could type) and reads back as no date
        assert back in (text, ""), (text, raw, back)
        if back == "":
            assert oracle_raw_to_iso(raw) == "", (text, raw)


# -- study days over the whole calendar --------------------------------------------------------

def oracle_day(text: str) -> dt.date | None:
    head = text[:10]
    if len(head) != 10 or not all(c in ASCII_DIGITS for c in head[:4] + head[5:7] + head[8:10]) \
            or head[4] != "-" or head[7] != "-":
        return None
    try:
        return dt.date(int(head[:4]), int(head[5:7]), int(head[8:10]))
    except ValueError:
        return None


def oracle_study_day(dtc: str, ref: str) -> float:
    a, b = oracle_day(dtc), oracle_day(ref)
    if a is None or b is None:
        return math.nan
    days = (a - b).days
    return float(days + 1 if days >= 0 else days)


dtc_text = st.one_of(
    st.dates().map(dt.date.isoformat),
    st.datetimes().map(lambda t: t.isoformat(timespec="minutes")),
    st.dates(dt.date(1, 1, 1), dt.date(1676, 12, 31)).map(dt.date.isoformat),
    st.dates(dt.date(2263, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat),
    st.sampled_from(["0000-01-01", "2023-02-29", "2024-02-29", "1900-02-29", "2000-02-29",
                     "2025-13-01", "2025-00-10", "2025-01-32", "2025-03", "2025", ""]),
    iso_date,
)


@CASES
@given(st.lists(st.tuples(dtc_text, dtc_text), **BATCH))
def test_study_days_match_the_calendar_in_every_year(pairs):
    dtc = pd.Series([p[0] for p in pairs], dtype=object)
    ref = pd.Series([p[1] for p in pairs], dtype=object)
    got = study_day(dtc, ref).to_numpy()
    want = np.array([oracle_study_day(a, b) for a, b in pairs])
    assert np.array_equal(got, want, equal_nan=True), [
        (p, g, w) for p, g, w in zip(pairs, got, want) if not (g == w or (np.isnan(g) and np.isnan(w)))][:5]
    assert 0 not in got        # SDTM study days skip day 0


@CASES
@given(st.lists(dtc_text, **BATCH))
def test_day_numbers_are_days_since_year_one(texts):
    got = day_numbers(texts)
    for text, number in zip(texts, got):
        day = oracle_day(text)
        assert (np.isnan(number) if day is None else number == (day - dt.date(1, 1, 1)).days), text


# -- times -------------------------------------------------------------------------------------

def oracle_time(text: str) -> bool:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(len(p) == 2 and all(c in ASCII_DIGITS for c in p) for p in parts):
        return False
    limits = (23, 59, 59)
    return all(int(p) <= lim for p, lim in zip(parts, limits))


time_text = st.one_of(
    st.times().map(lambda t: t.isoformat(timespec="minutes")),
    st.times().map(lambda t: t.isoformat(timespec="seconds")),
    st.tuples(st.integers(0, 99).flatmap(lambda h: _number_text(h, 2)),
              st.integers(0, 99).flatmap(lambda m: _number_text(m, 2))).map(":".join),
    st.sampled_from(["25:99", "24:00", "9:30", "09:30:60", "T14:30", "14h30", ""]),
    st.text(max_size=8),
)


@CASES
@given(st.lists(st.tuples(st.dates().map(dt.date.isoformat), time_text), **BATCH))
def test_a_time_joins_a_full_date_only_when_it_is_a_time(pairs):
    date = pd.Series([p[0] for p in pairs], dtype=object)
    time = pd.Series([p[1] for p in pairs], dtype=object)
    assert valid_time(time).tolist() == [oracle_time(t) for t in time]
    joined = combine(date, time).tolist()
    assert joined == [d + "T" + t if oracle_time(t) else d for d, t in pairs]


# -- numbers -----------------------------------------------------------------------------------

NUMBER_CHARS = set(ASCII_DIGITS + "+-.eE")


def oracle_number(text: str) -> float:
    core = text.strip(" \t\n\r\f\v")
    if not core or not set(core) <= NUMBER_CHARS:
        return math.nan
    try:
        return float(core)
    except ValueError:
        return math.nan


number_text = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-10**12, 10**12).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.sampled_from(["inf", "-inf", "nan", "NaN", "1_000", "1,5", "12,345", "1e999", "-1e999",
                     ".5", "5.", "+.5", "1e", "--1", ".", "1.2.3", " 7 ", "0x10", "١٢", "１２",
                     "12\xa0", "1e5", "1E-5", "Infinity", ""]),
    st.text(st.sampled_from(ASCII_DIGITS + "+-.eE ,_" + OTHER_DIGITS[:3]), max_size=8),
)


@CASES
@given(st.lists(number_text, **BATCH))
def test_numbers_are_decimal_numbers_only(texts):
    got = parse_numbers(pd.Series(texts, dtype=object))
    want = np.array([oracle_number(t) for t in texts])
    assert np.array_equal(got, want, equal_nan=True), [
        (t, g, w) for t, g, w in zip(texts, got, want) if not (g == w or (np.isnan(g) and np.isnan(w)))][:5]


def oracle_result(text: str) -> tuple[str, float]:
    core = text.strip()
    op = next((o for o in ("<=", ">=", "<", ">") if core.startswith(o)), "")
    rest = core[len(op):].strip()
    number = oracle_number(rest) if rest == rest.strip(" \t\n\r\f\v") else math.nan
    if rest and set(rest) <= NUMBER_CHARS and not math.isnan(number):
        return op, number if math.isfinite(number) else math.nan   # '1e999': beyond float range
    return "", math.nan


result_text = st.one_of(
    number_text,
    st.tuples(st.sampled_from(["<", ">", "<=", ">=", "=", "< ", "<<"]), number_text).map("".join),
    st.sampled_from(["NEGATIVE", "<LLOQ", "TNTC", "1,5", "<0,01", ">=1\u00a0000"]),
)


@CASES
@given(st.lists(result_text, **BATCH))
def test_lab_results_split_into_operator_and_number(texts):
    parsed = parse_results(pd.Series(texts, dtype=object))
    want = [oracle_result(t) for t in texts]
    for text, op, num, (w_op, w_num) in zip(texts, parsed["op"], parsed["num"], want):
        assert (op, num) == (w_op, w_num) or (op == w_op and math.isnan(num) and math.isnan(w_num)), \
            (text, op, num, w_op, w_num)


# -- the validator's ISO 8601 check on dates ---------------------------------------------------

def oracle_iso_datetime(text: str) -> bool:
    """ISO 8601 as SDTMIG uses it, for dates: YYYY, YYYY-MM, or a real YYYY-MM-DD (ASCII)."""
    if not text or not text.isascii():
        return False
    if len(text) == 4:
        return text.isdigit()
    if len(text) == 7:
        return text[:4].isdigit() and text[4] == "-" and text[5:].isdigit() and 1 <= int(text[5:]) <= 12
    return len(text) == 10 and oracle_day(text) is not None


@CASES
@given(st.lists(dtc_text.map(lambda t: t.split("T")[0]), **BATCH))
def test_the_validator_accepts_exactly_the_real_iso_dates(texts):
    got = _iso_ok(pyarrow.array(texts, type=pyarrow.string()), _ISO_PATTERNS["ISO 8601 datetime or interval"])
    assert got.tolist() == [oracle_iso_datetime(t) for t in texts], [
        (t, g) for t, g in zip(texts, got) if g != oracle_iso_datetime(t)][:5]


@pytest.mark.parametrize("text, iso", [("07 MAR 1500", "1500-03-07"), ("31 DEC 9999", "9999-12-31"),
                                       ("29 FEB 2000", "2000-02-29"), ("29 FEB 1900", "")])
def test_dates_outside_pandas_timestamps_are_dates(text, iso):
    """Named cases the random ones must include (pandas' ns timestamps end at 1677 and 2262)."""
    assert raw_to_iso(text) == iso
    if iso:
        assert study_day(pd.Series([iso]), pd.Series(["2000-01-01"])).iloc[0] == oracle_study_day(iso, "2000-01-01")
