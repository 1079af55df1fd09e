"""RS001 cellular-kinetics parameter table (t-14-4-1): the ARD against an independent
numpy/scipy recomputation from ADPP, and the summary kernel with the PK statistics against
published reference values."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tlf.analyses.base import GEO_STATS, records_of, subject_groups, summarise

OUT = "t-14-4-1"


def _independent(x: np.ndarray) -> dict:
    s_log = np.std(np.log(x), ddof=1) if len(x) > 1 else np.nan
    return {"n": len(x), "mean": np.mean(x), "sd": np.std(x, ddof=1) if len(x) > 1 else np.nan,
            "cv": 100 * np.std(x, ddof=1) / np.mean(x) if len(x) > 1 else np.nan,
            "geomean": stats.gmean(x), "geocv": 100 * np.sqrt(np.exp(s_log ** 2) - 1),
            "median": np.median(x), "min": np.min(x), "max": np.max(x)}


def test_pk_parameters_agree_with_scipy(sample_tlf):
    run = sample_tlf["RS001"]
    ard = run.ard(OUT)
    adpp, adsl = run.adam("ADPP"), run.adam("ADSL")
    pk = adsl.loc[adsl["PKFL"] == "Y", ["USUBJID", "TRT01A"]]
    data = adpp.merge(pk, on="USUBJID", suffixes=("_PP", ""))
    data = data[data["AVAL"].notna()]
    cells = ard[ard["PARAMCD"] != ""]
    assert {"CMAXQ", "CMAXF", "TMAXQ", "AUC28DQ", "AUCLSTF", "LAMZHLQ", "THLFOBSF"} <= set(
        cells["PARAMCD"])
    checked = 0
    for (code, level), cell in cells.groupby(["PARAMCD", "GRP1LVL"]):
        sub = data[data["PARAMCD"] == code]
        if level != "All subjects":
            sub = sub[sub["TRT01A"] == level]
        expect = _independent(sub["AVAL"].to_numpy(float))
        got = cell.set_index("STAT")["STATVAL"]
        assert got["n"] == expect["n"], (code, level)
        for stat, value in got.items():
            if np.isnan(expect[stat]):
                assert np.isnan(value), (code, level, stat)
            else:
                assert value == pytest.approx(expect[stat], rel=1e-10), (code, level, stat)
            checked += 1
        # Tmax and Tlast are sampling times: no mean or geometric statistics (catalogue
        # time_params)
        if code.startswith(("TMAX", "TLST")):
            assert set(got.index) == {"n", "median", "min", "max"}
        else:
            assert set(got.index) == set(GEO_STATS)
    assert checked > 400     # 12 parameters x 5 groups x up to 9 statistics
    units = cells.set_index(["PARAMCD", "STAT"])["UNIT"].sort_index()
    assert (units.loc[("TMAXQ", "median")] == "DAYS").all()
    assert (units.loc[("CMAXQ", "geocv")] == "%").all()
    assert (units.loc[("CMAXQ", "n")] == "").all()
    # both half-life definitions, on both method pages
    assert {"LAMZHLQ", "THLFOBSQ", "LAMZHLF", "THLFOBSF"} <= set(cells["PARAMCD"])


def test_pk_denominators_and_members(sample_tlf):
    run = sample_tlf["RS001"]
    ard = run.ard(OUT)
    adsl = run.adam("ADSL")
    pk = adsl[adsl["PKFL"] == "Y"]
    n_rows = ard[ard["STAT"] == "N"].set_index("GRP1LVL")["STATVAL"]
    assert n_rows["All subjects"] == len(pk)
    for level, n in pk.groupby("TRT01A").size().items():
        assert n_rows[level] == n
    lin = run.lineage()
    lin = lin[(lin["OUTID"] == OUT) & (lin["ADDSN"] == "ADPP")]
    rows = ard.reset_index(drop=True)
    row = rows.index[(rows["PARAMCD"] == "CMAXQ") & (rows["GRP1LVL"] == "All subjects")
                     & (rows["STAT"] == "n")][0] + 1
    assert lin.loc[lin["ARDROW"] == row, "USUBJID"].nunique() == len(pk)


# Reference values, stated with their source.
# 1. R 4.2.2 datasets::Theoph (theophylline, 12 subjects; Boeckmann, Sheiner & Beal 1994,
#    NONMEM Users Guide Part V): Cmax and Tmax per subject = the maximum observed conc and its
#    time. Computed with
#      cm <- tapply(Theoph$conc, Theoph$Subject, max); s <- sd(log(cm))
#      c(mean(cm), sd(cm), 100*sd(cm)/mean(cm), exp(mean(log(cm))), 100*sqrt(exp(s^2)-1),
#        median(cm), min(cm), max(cm))
#    -> Rscript output below (15 significant digits).
THEOPH_CMAX = [10.50, 8.33, 8.20, 8.60, 11.40, 6.44, 7.09, 7.56, 9.03, 10.21, 8.00, 9.75]
THEOPH_TMAX = [1.12, 1.92, 1.02, 1.07, 1.00, 1.15, 3.48, 2.02, 0.63, 3.55, 0.98, 3.52]
R_CMAX = {"n": 12, "mean": 8.75916666666667, "sd": 1.47295903993741, "cv": 16.81620062719903,
          "geomean": 8.64621679286335, "geocv": 16.97776054211730, "median": 8.465,
          "min": 6.44, "max": 11.40}
R_TMAX = {"n": 12, "median": 1.135, "min": 0.63, "max": 3.55}
# 2. NIST StRD univariate summary statistics, dataset NumAcc2 (1001 values: 1.2 then 500 pairs
#    1.1, 1.3): certified mean 1.2, sd 0.1 (https://www.itl.nist.gov/div898/strd/univ/).


def _literal(values, code):
    df = pd.DataFrame({"USUBJID": [f"S{i:04d}" for i in range(len(values))],
                       "ASEQ": 1.0, "PARAMCD": code, "AVAL": values})
    adsl = pd.DataFrame({"USUBJID": df["USUBJID"], "PKFL": "Y"})
    return records_of(df, "ADPP"), subject_groups(adsl, "PKFL")


def test_summary_against_r_theoph():
    rec, groups = _literal(THEOPH_CMAX, "CMAX")
    ard, members = summarise(rec, "AVAL", groups, "t-x", stats=GEO_STATS, unit="mg/L")
    got = ard.set_index("STAT")["STATVAL"]
    for stat, value in R_CMAX.items():
        assert got[stat] == pytest.approx(value, abs=1e-12, rel=1e-13), stat
    assert len(members) == 12
    rec, groups = _literal(THEOPH_TMAX, "TMAX")
    ard, _ = summarise(rec, "AVAL", groups, "t-x", stats=("n", "median", "min", "max"))
    got = ard.set_index("STAT")["STATVAL"]
    for stat, value in R_TMAX.items():
        assert got[stat] == pytest.approx(value, abs=1e-12), stat


def test_summary_against_nist_numacc2():
    rec, groups = _literal([1.2] + [1.1, 1.3] * 500, "X")
    got = summarise(rec, "AVAL", groups, "t-x", stats=GEO_STATS)[0].set_index("STAT")["STATVAL"]
    assert got["n"] == 1001
    assert got["mean"] == pytest.approx(1.2, abs=1e-13)
    assert got["sd"] == pytest.approx(0.1, abs=1e-13)


def test_geometric_stats_not_estimable_with_zero():
    # a level of 0 has no logarithm: geometric mean and CV are NE, the rest still computed
    rec, groups = _literal([0.0, 10.0, 100.0], "CMAX")
    ard = summarise(rec, "AVAL", groups, "t-x", stats=GEO_STATS)[0].set_index("STAT")
    assert np.isnan(ard.loc["geomean", "STATVAL"]) and ard.loc["geomean", "STATC"] == "NE"
    assert ard.loc["mean", "STATVAL"] == pytest.approx(110 / 3)


def test_missing_ncacd_is_a_config_error(sample_tlf):
    from clinpipe.errors import ClinpipeError
    from tlf.catalog import load_catalog
    from tlf.context import TlfContext
    from tlf.run import build_output

    run = sample_tlf["RS001"]
    cat = load_catalog("RS001")
    spec = cat.output(OUT)
    bad = spec.model_copy(update={"params": {**spec.params, "ncacd": ["CMAX", "NOPE"]}})
    ctx = TlfContext.open("RS001", run.base / "adam", cat)
    with pytest.raises(ClinpipeError, match="NOPE"):
        build_output(ctx, bad)
