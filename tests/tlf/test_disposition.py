"""RS001 disposition (t-14-1-1) against ADSL."""
from __future__ import annotations

import pandas as pd

from tlf.analyses import disposition
from tlf.analyses.base import ALL
from tlf.catalog import load_catalog
from tlf.context import TlfContext


def _pop(adsl, flag="ENRLFL", by="TRT01A"):
    pop = adsl[adsl[flag] == "Y"]
    own = pop.loc[pop[by].fillna("") != "", ["USUBJID", by]].rename(columns={by: "GRP1LVL"})
    return pd.concat([own, pop[["USUBJID"]].assign(GRP1LVL=ALL)], ignore_index=True)


def _n(ard, **keys):
    m = ard["STAT"] == "n"
    for k, v in keys.items():
        m &= ard[k] == v
    return ard.loc[m].set_index("GRP1LVL")["STATVAL"].astype(int).to_dict()


def test_screening_counts_all_adsl(sample_tlf):
    s = sample_tlf["RS001"]
    adsl = s.adam("ADSL")
    ard = s.ard("t-14-1-1")
    assert _n(ard, PARAMCD="SCREENED") == {ALL: len(adsl)}
    assert _n(ard, PARAMCD="SCRNFAIL") == {ALL: int((adsl["ENRLFL"] != "Y").sum())}
    lin = s.lineage()
    row = ard.index[(ard["PARAMCD"] == "SCRNFAIL") & (ard["STAT"] == "n")][0] + 1
    got = set(lin.loc[(lin["OUTID"] == "t-14-1-1") & (lin["ARDROW"] == row), "USUBJID"])
    assert got == set(adsl.loc[adsl["ENRLFL"] != "Y", "USUBJID"])


def test_flags_status_reasons_match_adsl(sample_tlf):
    s = sample_tlf["RS001"]
    adsl = s.adam("ADSL")
    pop = _pop(adsl).merge(adsl, on="USUBJID")
    ard = s.ard("t-14-1-1")
    for flag in ("SAFFL", "DLTEVLFL", "EFFFL", "PKFL"):
        exp = pop[pop[flag] == "Y"].groupby("GRP1LVL")["USUBJID"].nunique().to_dict()
        assert _n(ard, PARAMCD=flag, VARLVL="Y") == exp, flag
    for var in ("EOSSTT", "DCSREAS"):
        sub = pop[pop[var].fillna("") != ""]
        exp = sub.groupby(["GRP1LVL", var])["USUBJID"].nunique()
        got = ard[(ard["PARAMCD"] == var) & (ard["STAT"] == "n")].set_index(
            ["GRP1LVL", "VARLVL"])["STATVAL"]
        assert dict(got.astype(int)) == dict(exp), var
    N = pop.groupby("GRP1LVL")["USUBJID"].nunique().to_dict()
    assert ard[ard["STAT"] == "N"].set_index("GRP1LVL")["STATVAL"].astype(int).to_dict() == N


def test_table_layout(sample_tlf):
    s = sample_tlf["RS001"]
    ctx = TlfContext.open("RS001", s.base / "adam", load_catalog("RS001"))
    body = disposition.summary(ctx, ctx.catalog.output("t-14-1-1")).table.body
    screening = body.iloc[:2]
    dose_cols = [c for c in body.columns if c not in ("LABEL", ALL)]
    assert (screening[dose_cols] == "").all().all()      # no dose level for screen failures
    labels = list(body["LABEL"])
    assert labels.index("  ONGOING") < labels.index("  COMPLETED") < labels.index("  DISCONTINUED")
    assert "  SCREEN FAILURE" not in labels           # not in the enrolled population
