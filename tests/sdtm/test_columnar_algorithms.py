"""The columnar algorithms (issue 18) give what the row-wise ones gave: each is checked against
the row-wise code it replaced (kept here as the reference) on inputs with the awkward cases
(missing values, Unicode digits and spaces, ties, partial dates, records out of order)."""
import re

import numpy as np
import pandas as pd
import pytest

import sdtm.algorithms  # noqa: F401  (registers the alg_* modules before they are imported)
from clinpipe.config import load_study
from sdtm import dates
from sdtm.alg_findings import (
    _standardize_rows,
    conversion_table,
    last_before_exposure,
    normal_range_indicator,
    parse_results,
    standardize,
)
from sdtm.algorithms import ALGORITHMS, Context, evaluate, subject_extreme
from sdtm.distinct import encode, per_distinct
from sdtm.epochs import epoch_of
from sdtm.spec import VarSpec

_NUMBER = re.compile(r"^\s*(<=|>=|<|>)?\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")

TEXTS = ["12.5", "<5", ">= 1000", " 3 ", "\x1c5\x1f", "\x0b7", "5\n", "\u0663", "\uff15", "\u00a05",
         "5\u2003", "1e400", "-.5", "+3.", "<", "", None, np.nan, "abc", "<=-1e-3", "1 000", ". 5",
         "> 2.50", "3.50", "0", "00012", "1E5", "<0.5", "NEGATIVE", "7", "7"]


def _old_parse(text: pd.Series) -> pd.DataFrame:
    text = text.fillna("").astype(str)
    parts = text.str.extract(_NUMBER)
    return pd.DataFrame({"op": parts[0].fillna("").astype(object),
                         "num": pd.to_numeric(parts[1], errors="coerce")}, index=text.index)


def _old_nrind(result, low, high):
    parsed = _old_parse(result)
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


def _old_last_before(subject, test, dtc, ref, has_result, same_day):
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


def test_parse_results_is_the_python_regex():
    text = pd.Series(TEXTS * 3, index=np.arange(len(TEXTS) * 3)[::-1] * 7)
    pd.testing.assert_frame_equal(parse_results(text), _old_parse(text))
    # every ASCII character around a number reads as Python's \s reads it
    ascii_ = pd.Series([f"{chr(c)}5{chr(c)}" for c in range(128)])
    pd.testing.assert_frame_equal(parse_results(ascii_), _old_parse(ascii_))
    ints = pd.Series(["1", "2", "1"])      # the dtype follows the values, as to_numeric decides
    pd.testing.assert_frame_equal(parse_results(ints), _old_parse(ints))


def test_per_distinct_is_row_wise():
    rng = np.random.default_rng(3)
    date = pd.Series(rng.choice(["2025-01-02", "2025-01", "", None, "2025-02-30"], 200), index=rng.permutation(200))
    time = pd.Series(rng.choice(["10:00", "", None], 200), index=date.index)
    pd.testing.assert_series_equal(per_distinct(dates.combine, date, time), dates.combine(date, time))
    # a second column with the same records in another order is aligned by label
    shuffled = time.sample(frac=1, random_state=1)
    pd.testing.assert_series_equal(per_distinct(dates.combine, date, shuffled), dates.combine(date, time))


def test_standardize_per_distinct_is_row_wise():
    rng = np.random.default_rng(5)
    n = 300
    result = pd.Series(rng.choice(TEXTS[:-2] + ["5.1", "88.4", "0.85", "<0.5"], n))
    unit = pd.Series(rng.choice(["g/dL", "mg/dL", "g/L", "umol/L", "", "U/L", "x"], n))
    test = pd.Series(rng.choice(["HGB", "BILI", "ALT", "XX", ""], n))
    table = conversion_table("lab_units.yaml")
    got, problem = standardize(result, unit, test, table)
    want, want_problem = _standardize_rows(result, unit, test, table)
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_series_equal(problem, want_problem)
    assert problem.nunique() > 2 and (got["STRESC"] != result.fillna("").str.strip()).any()
    got, problem = standardize(result, unit)
    want, want_problem = _standardize_rows(result, unit)
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_series_equal(problem, want_problem)


def test_nrind_is_row_wise():
    rng = np.random.default_rng(7)
    n = 400
    result = pd.Series(rng.choice(["3", "5", "10", "<5", "<=5", ">10", ">=10", "<3", "x", "", None, "4.0"], n))
    low = pd.Series(rng.choice([np.nan, 3.0, 5.0], n))
    high = pd.Series(rng.choice([np.nan, 10.0, 8.0], n))
    pd.testing.assert_series_equal(normal_range_indicator(result, low, high), _old_nrind(result, low, high))


def test_last_before_exposure_is_row_wise():
    rng = np.random.default_rng(11)
    n = 500
    subject = pd.Series(rng.choice(["S1", "S2", "S3", None], n, p=[0.3, 0.3, 0.3, 0.1]))
    test = pd.Series(rng.choice(["HGB", "ALT", "A|B"], n))
    dtc = pd.Series(rng.choice(["2025-01-01", "2025-01-02", "2025-01-02T08:00", "2025-01-02T09:30",
                                "2025-01", "", None, "2025-01-03T07:00", "2024-12-31"], n))
    ref = pd.Series(rng.choice(["2025-01-02T09:00", "2025-01-02", "2025-01", None], n))
    has = pd.Series(rng.random(n) < 0.8)
    same_day = pd.Series(rng.random(n) < 0.5)
    got = last_before_exposure(subject, test, dtc, ref, has, same_day)
    pd.testing.assert_series_equal(got, _old_last_before(subject, test, dtc, ref, has, same_day))
    assert (got == "Y").sum() > 3


def test_subject_extreme_is_groupby_of_text():
    subject = np.array(["A", "B", "A", "C", "B", "C", None], dtype=object)
    dtc = np.array(["2025-01-02", "2025-01", "2025-01-02T10:00", np.nan, "2024-12-01", np.nan, "2025"],
                   dtype=object)
    frame = pd.DataFrame({"SUBJECT": subject, "DTC": dtc})
    for last in (True, False):
        want = frame.groupby("SUBJECT")["DTC"].max() if last else frame.groupby("SUBJECT")["DTC"].min()
        got = subject_extreme([subject[:3], subject[3:]], [dtc[:3], dtc[3:]], last=last)
        assert got.to_dict() == pytest.approx(want.to_dict(), nan_ok=True)


def _ctx(src, out=None, **kw):
    out = out if out is not None else pd.DataFrame(index=src.index)
    return Context(study=load_study("RS001"), src=src, out=out, **kw)


def test_condition_reads_mapped_variables_first_and_any_record_order():
    src = pd.DataFrame({"A": ["Y", "N", "N", "Y"], "ENR.ELIG": ["N", "Y", "N", ""], "STUDYID": ["x"] * 4},
                       index=[10, 11, 12, 13])
    out = pd.DataFrame({"STUDYID": ["RS001"] * 4, "B": ["1", "", "2", ""]}, index=src.index)
    expr = "(A == 'Y' or `ENR.ELIG` == 'N') and STUDYID == 'RS001' and B != ''"
    frame = src.drop(columns=["STUDYID"]).join(out)
    want = frame.eval(expr, engine="python").astype(bool)
    pd.testing.assert_series_equal(evaluate(_ctx(src, out), expr), want)
    # the SUPP-- pass hands over `out` in --SEQ order
    pd.testing.assert_series_equal(evaluate(_ctx(src, out.iloc[::-1]), expr), want)
    assert evaluate(_ctx(src, out), "A.isin(['N'])").tolist() == [False, True, True, False]


def test_encoded_column_follows_a_replaced_column():
    src = pd.DataFrame({"X": ["a", "b", "a"]})
    out = pd.DataFrame(index=src.index)
    ctx = _ctx(src, out)
    out["V"] = ["p", "q", "p"]
    first = ctx.encoded("V")
    assert ctx.encoded("V") is first          # the same column: encoded once
    out["V"] = ["r", "r", "s"]
    again = ctx.encoded("V")
    assert again is not first and list(again.values()) == ["r", "r", "s"]


def test_study_day_and_epoch_as_the_row_wise_helpers():
    rng = np.random.default_rng(13)
    n = 300
    subjects = ["RS001-1", "RS001-2", "RS001-3"]
    src = pd.DataFrame({"D": rng.choice(["2025-01-05", "2025-01-20", "2025-02-10", "2025-01", "",
                                         "2024-12-01", "2025-01-25T10:00"], n)},
                       index=rng.permutation(n))
    out = pd.DataFrame({"USUBJID": rng.choice(subjects + ["RS001-9"], n)}, index=src.index)
    ref = pd.Series(["2025-01-10", "2025-01", "2025-01-20"], index=subjects)
    se = pd.DataFrame({"USUBJID": ["RS001-1"] * 3 + ["RS001-2"] * 2,
                       "SESTDTC": ["2025-01-01", "2025-01-20", "2025-01-25", "2025-01-03", "2025-01-15"],
                       "SEENDTC": ["2025-01-20", "2025-01-25", "", "2025-01-15", "2025-01-18"],
                       "EPOCH": ["SCREENING", "TREATMENT", "FOLLOW-UP", "SCREENING", "TREATMENT"]})
    ctx = _ctx(src, out, ref_start=ref, elements=se)
    got = ALGORITHMS["study_day"].run(ctx, VarSpec("XXDY", "study_day", "D", {}, None))
    pd.testing.assert_series_equal(got, dates.study_day(src["D"], out["USUBJID"].map(ref)))
    got = ALGORITHMS["epoch"].run(ctx, VarSpec("EPOCH", "epoch", "D", {}, None))
    pd.testing.assert_series_equal(got, epoch_of(out["USUBJID"], src["D"], se))


def test_assign_ct_per_distinct_pair_reports_each_record():
    src = pd.DataFrame({"R": ["3", "1", "X9", "", "X9", "3"], "R_DEC": ["Asian", "White", "", "", "Martian", "Asian"]},
                       index=[5, 4, 3, 2, 1, 0])
    ctx = _ctx(src)
    got = ALGORITHMS["assign_ct"].run(ctx, VarSpec("X", "assign_ct", "R", {"codelist": "RACE"}, None))
    assert got.tolist() == ["ASIAN", "WHITE", "X9", "", "X9", "ASIAN"]
    assert got.index.tolist() == [5, 4, 3, 2, 1, 0]
    assert [(i[1], i[2]) for i in ctx.issues] == [(3, "X9"), (1, "X9")]


def test_encode_keeps_missing_values_as_a_value():
    enc = encode(pd.Series(["a", None, "a", np.nan]))
    assert len(enc.uniques) == 2 and enc.codes[1] == enc.codes[3]
