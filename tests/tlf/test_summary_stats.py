"""tlf.analyses.base.summarise (the NCA / descriptive-statistics kernel) against
independent references: numpy / scipy / pandas recomputation, R 4.2.2 output and
a published SAS PROC UNIVARIATE result.

R references were produced with R 4.2.2 Patched (2022-11-10 r83330); the call
and its printed output are next to each number.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from tlf.analyses.base import (
    ALL,
    GEO_STATS,
    SUMMARY_STATS,
    _sas_quantile,
    subject_groups,
    summarise,
)

EVERY_STAT = tuple(dict.fromkeys(SUMMARY_STATS + GEO_STATS))


def make_groups(arms: dict[str, str], saffl: dict[str, str] | None = None, total=True):
    """A tiny ADSL: USUBJID -> arm, SAFFL 'Y' unless given; TRT01AN orders the arms."""
    subj = list(arms)
    order = {a: i + 1 for i, a in enumerate(dict.fromkeys(arms.values()))}
    adsl = pd.DataFrame({
        "USUBJID": subj,
        "SAFFL": [(saffl or {}).get(s, "Y") for s in subj],
        "TRT01A": [arms[s] for s in subj],
        "TRT01AN": [order[arms[s]] for s in subj],
    })
    return subject_groups(adsl, "SAFFL", "TRT01A", total=total)


def make_records(rows):
    """rows: (USUBJID, PARAMCD, AVAL) -> kernel records (DATASET, RECSEQ as in records_of)."""
    df = pd.DataFrame(rows, columns=["USUBJID", "PARAMCD", "AVAL"])
    return df.assign(DATASET="ADPP", RECSEQ=np.arange(1, len(df) + 1, dtype=float))


def run(rows, arms, stats=EVERY_STAT, **kw):
    groups = make_groups(arms, **{k: kw.pop(k) for k in ("saffl", "total") if k in kw})
    return summarise(make_records(rows), "AVAL", groups, "t-14-9-9", stats=stats, **kw)


def values(ard, grp, paramcd=""):
    cell = ard[(ard["GRP1LVL"] == grp) & (ard["PARAMCD"] == paramcd)]
    assert not cell["STAT"].duplicated().any()
    return cell.set_index("STAT")["STATVAL"].astype(float).to_dict()


def printed(ard, grp, paramcd=""):
    cell = ard[(ard["GRP1LVL"] == grp) & (ard["PARAMCD"] == paramcd)]
    return cell.set_index("STAT")["STATC"].to_dict()


# ---------------------------------------------------------------------------
# Published / R references
# ---------------------------------------------------------------------------
def test_quartiles_match_published_sas_proc_univariate_output():
    # SAS-L, "stats question on quartiles", Roland Rashleigh-Berry, 9 Sep 2003
    # (http://www.listserv.uga.edu/cgi-bin/wa?A2=ind0309b&L=sas-l&D=0&P=7669):
    # PROC UNIVARIATE (default PCTLDEF=5) on these 20 values printed Q1=205 and
    # Q3=359.  R> quantile(v, c(.25, .5, .75), type = 2) -> 205 304 359
    v = [19, 104, 147, 167, 186, 224, 226, 299, 299, 302, 306, 332, 337, 340, 357, 361,
         365, 392, 395, 443]
    arms = {f"S{i:02d}": "A" for i in range(len(v))}
    ard, _ = run([(s, "AUCLST", x) for s, x in zip(arms, v)], arms)
    got = values(ard, "A", "AUCLST")
    assert (got["q1"], got["median"], got["q3"]) == (205.0, 304.0, 359.0)
    assert (got["min"], got["max"], got["n"]) == (19.0, 443.0, 20.0)


def test_all_statistics_match_r():
    # R> y <- c(2.1, 3.4, 1.9, 5.6, 4.4, 2.8, 3.3); options(digits = 15)
    # R> mean(y); sd(y)                        3.35714285714286  1.2998168369135
    # R> 100 * sd(y) / mean(y)                 38.7179483335935
    # R> quantile(y, c(.25, .5, .75), type=2)  2.1 3.3 4.4
    # R> exp(mean(log(y)))                     3.15164856388148
    # R> 100 * sqrt(exp(var(log(y))) - 1)      39.856361692363
    # (geometric CV% as in Kirkwood, Biometrics 35:908-909, 1979)
    y = [2.1, 3.4, 1.9, 5.6, 4.4, 2.8, 3.3]
    arms = {f"S{i}": "A" for i in range(len(y))}
    ard, _ = run([(s, "CMAX", x) for s, x in zip(arms, y)], arms)
    got = values(ard, "A", "CMAX")
    ref = {"n": 7, "mean": 3.35714285714286, "sd": 1.2998168369135, "cv": 38.7179483335935,
           "q1": 2.1, "median": 3.3, "q3": 4.4, "min": 1.9, "max": 5.6,
           "geomean": 3.15164856388148, "geocv": 39.856361692363}
    assert set(got) == set(ref)
    for stat, expected in ref.items():
        assert got[stat] == pytest.approx(expected, rel=1e-13), stat
    # the total column holds the same subjects here
    assert values(ard, ALL, "CMAX") == got


@pytest.mark.parametrize("v,q", [
    # R> quantile(1:10, c(.25, .5, .75), type = 2)   3.0 5.5 8.0
    (list(range(1, 11)), (3.0, 5.5, 8.0)),
    # R> quantile(1:9, c(.25, .5, .75), type = 2)    3 5 7
    (list(range(1, 10)), (3.0, 5.0, 7.0)),
    # R> quantile(c(4, 1, 3, 2), c(.25, .5, .75), type = 2)   1.5 2.5 3.5
    ([4, 1, 3, 2], (1.5, 2.5, 3.5)),
])
def test_sas_quantile_matches_r_type_2(v, q):
    arr = np.array(v, dtype=float)
    assert tuple(_sas_quantile(arr, p) for p in (0.25, 0.5, 0.75)) == q


# ---------------------------------------------------------------------------
# Independent recomputation (numpy / scipy / pandas) on several cells
# ---------------------------------------------------------------------------
def _reference(v: np.ndarray) -> dict:
    """What each statistic must be, by libraries independent of summarise."""
    v = v[~np.isnan(v)]
    pos = bool((v > 0).all())
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
    logsd = float(np.std(np.log(v), ddof=1)) if pos and len(v) > 1 else math.nan
    return {
        "n": len(v), "mean": float(np.mean(v)), "sd": sd,
        "cv": 100 * float(sps.variation(v, ddof=1)) if len(v) > 1 else math.nan,
        # numpy documents 'averaged_inverted_cdf' as Hyndman-Fan type 2, i.e. SAS
        # PCTLDEF=5 (exact here: n * 0.25 is exact in binary)
        "q1": float(np.quantile(v, 0.25, method="averaged_inverted_cdf")),
        "median": float(np.median(v)),
        "q3": float(np.quantile(v, 0.75, method="averaged_inverted_cdf")),
        "min": float(v.min()), "max": float(v.max()),
        "geomean": float(sps.gmean(v)) if pos else math.nan,
        "geocv": 100 * math.sqrt(math.expm1(logsd ** 2)) if pos else math.nan,
    }


def _assert_matches(got: dict, ref: dict):
    assert set(got) == set(ref)
    for stat, expected in ref.items():
        if math.isnan(expected):
            assert math.isnan(got[stat]), (stat, got[stat])
        else:
            assert got[stat] == pytest.approx(expected, rel=1e-12, abs=1e-12), stat


def test_every_cell_matches_numpy_scipy_recomputation():
    rng = np.random.default_rng(16)
    subjects = [f"S{i:03d}" for i in range(57)]
    arms = {s: ("Drug 10 mg", "Drug 20 mg", "Placebo")[i % 3] for i, s in enumerate(subjects)}
    rows = []
    for s in subjects:
        # lognormal PK-like values rounded to 2 decimals so that ties occur
        rows.append((s, "CMAX", round(float(rng.lognormal(3, 0.6)), 2)))
        rows.append((s, "AUCLST", round(float(rng.lognormal(6, 0.4)), 0)))
    rows[5] = (rows[5][0], "CMAX", math.nan)     # missing values are not counted
    rows[8] = (rows[8][0], "AUCLST", math.nan)
    ard, members = run(rows, arms)
    frame = make_records(rows).assign(ARM=lambda d: d["USUBJID"].map(arms))
    for param in ("CMAX", "AUCLST"):
        for arm in ("Drug 10 mg", "Drug 20 mg", "Placebo", ALL):
            sel = frame[(frame["PARAMCD"] == param) & ((frame["ARM"] == arm) | (arm == ALL))]
            _assert_matches(values(ard, arm, param), _reference(sel["AVAL"].to_numpy(float)))
            # lineage: the members of a cell are exactly its non-missing records
            m = members[(members["GRP1LVL"] == arm) & (members["PARAMCD"] == param)]
            assert sorted(m["RECSEQ"]) == sorted(sel.loc[sel["AVAL"].notna(), "RECSEQ"])
            assert set(m["ROLE"]) == {"num"}
    # column order as displayed (TRT01AN), total last
    assert list(dict.fromkeys(ard["GRP1LVL"])) == ["Drug 10 mg", "Drug 20 mg", "Placebo", ALL]


@pytest.mark.parametrize("n", range(1, 26))
def test_sas_quantile_matches_numpy_averaged_inverted_cdf(n):
    rng = np.random.default_rng(n)
    v = rng.integers(0, 8, n).astype(float)     # many ties
    v[rng.random(n) < 0.2] = np.nan            # _sas_quantile drops NaN itself
    w = v[~np.isnan(v)]
    for p in (0.125, 0.25, 0.5, 0.75, 0.875):   # dyadic: n * p is exact
        expected = np.quantile(w, p, method="averaged_inverted_cdf") if len(w) else np.nan
        np.testing.assert_equal(_sas_quantile(v, p), expected)


# ---------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------
def test_single_value_sd_cv_geocv_not_estimable():
    ard, _ = run([("S1", "CMAX", 12.3)], {"S1": "A"}, total=False)
    got = values(ard, "A", "CMAX")
    assert got["n"] == 1 and got["mean"] == got["median"] == got["q1"] == got["q3"] == 12.3
    assert got["geomean"] == pytest.approx(12.3, rel=1e-15)
    assert math.isnan(got["sd"]) and math.isnan(got["cv"]) and math.isnan(got["geocv"])
    txt = printed(ard, "A", "CMAX")
    assert (txt["n"], txt["sd"], txt["cv"], txt["geocv"]) == ("1", "NE", "NE", "NE")
    assert (txt["mean"], txt["min"]) == ("12.30", "12.3")  # mean one decimal more than min


@pytest.mark.parametrize("bad", [0.0, -1.5])
def test_zero_or_negative_value_makes_geometric_stats_not_estimable(bad):
    arms = {"S1": "A", "S2": "A", "S3": "A", "S4": "B", "S5": "B"}
    rows = [("S1", "CMAX", 2.0), ("S2", "CMAX", bad), ("S3", "CMAX", 8.0),
            ("S4", "CMAX", 2.0), ("S5", "CMAX", 8.0)]
    ard, _ = run(rows, arms)
    a, b, tot = (values(ard, g, "CMAX") for g in ("A", "B", ALL))
    for grp, got in (("A", a), (ALL, tot)):
        assert math.isnan(got["geomean"]) and math.isnan(got["geocv"])
        assert printed(ard, grp, "CMAX")["geomean"] == printed(ard, grp, "CMAX")["geocv"] == "NE"
    # the arithmetic statistics are unaffected
    _assert_matches(a, {**_reference(np.array([2.0, bad, 8.0])), "geomean": math.nan,
                        "geocv": math.nan})
    # the other arm is still estimable: exp(mean(log(c(2, 8)))) = 4
    assert b["geomean"] == pytest.approx(4.0, rel=1e-15)
    assert b["geocv"] == pytest.approx(100 * math.sqrt(math.expm1(np.var(np.log([2, 8]), ddof=1))))


def test_all_missing_gives_no_statistics_and_no_members():
    arms = {"S1": "A", "S2": "A", "S3": "B"}
    rows = [("S1", "CMAX", math.nan), ("S2", "CMAX", math.nan), ("S3", "CMAX", 5.0)]
    ard, members = run(rows, arms)
    cell_a = ard[ard["GRP1LVL"] == "A"]
    # either no row at all (layout_rows then prints n as 0 and the rest blank) or n = 0
    assert set(cell_a["STAT"]) <= {"n"}
    assert (cell_a["STATVAL"] == 0).all()
    assert members[members["GRP1LVL"] == "A"].empty
    assert values(ard, "B", "CMAX")["n"] == 1
    # nothing estimable anywhere: an empty ARD, not an error
    ard, members = run([("S1", "CMAX", math.nan)], {"S1": "A"})
    assert ard.empty and members.empty


def test_subjects_outside_the_population_are_not_summarised():
    arms = {"S1": "A", "S2": "A", "S3": "A"}
    rows = [("S1", "CMAX", 1.0), ("S2", "CMAX", 3.0), ("S3", "CMAX", 100.0)]
    ard, members = run(rows, arms, saffl={"S3": "N"}, total=False)
    got = values(ard, "A", "CMAX")
    assert (got["n"], got["mean"], got["max"]) == (2, 2.0, 3.0)
    assert set(members["USUBJID"]) == {"S1", "S2"}


def test_units_and_stat_vocabulary():
    arms = {"S1": "A", "S2": "A"}
    ard, _ = run([("S1", "CMAX", 1.0), ("S2", "CMAX", 3.0)], arms, unit="ng/mL")
    unit = ard.set_index(["GRP1LVL", "STAT"])["UNIT"]
    assert unit[("A", "cv")] == unit[("A", "geocv")] == "%"
    assert unit[("A", "n")] == ""
    assert unit[("A", "mean")] == unit[("A", "geomean")] == "ng/mL"


def test_groups_by_a_variable_without_numeric_twin():
    adsl = pd.DataFrame({"USUBJID": ["S1", "S2"], "SAFFL": "Y", "ARM": ["B", "A"]})
    groups = subject_groups(adsl, "SAFFL", "ARM")
    assert groups.levels == ["A", "B"]
