"""RS001 demographics tables (mappings/RS001/tlf/baseline.yaml) against ADSL, and the
categorical level order on literal frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tlf.analyses import demog
from tlf.analyses.base import ALL
from tlf.catalog import OutputSpec, load_catalog
from tlf.context import TlfContext, TlfInputError


def _pop(adsl, by):
    pop = adsl[adsl["SAFFL"] == "Y"]
    own = pop.loc[pop[by].fillna("") != "", ["USUBJID", by]].rename(columns={by: "GRP1LVL"})
    return pd.concat([own, pop[["USUBJID"]].assign(GRP1LVL=ALL)], ignore_index=True)


@pytest.mark.parametrize("outid, by", [("t-14-1-2", "TRT01A"), ("t-14-1-3", "DISEASCD")])
def test_age_summary_matches_adsl(sample_tlf, outid, by):
    s = sample_tlf["RS001"]
    adsl = s.adam("ADSL")
    age = _pop(adsl, by).merge(adsl[["USUBJID", "AGE"]], on="USUBJID").groupby("GRP1LVL")["AGE"]
    ard = s.ard(outid)
    a = ard[ard["PARAMCD"] == "AGE"].pivot(index="GRP1LVL", columns="STAT", values="STATVAL")
    np.testing.assert_array_equal(a["n"], age.count().reindex(a.index))
    np.testing.assert_allclose(a["mean"], age.mean().reindex(a.index))
    np.testing.assert_allclose(a["sd"], age.std(ddof=1).reindex(a.index))
    np.testing.assert_allclose(a["median"], age.median().reindex(a.index))
    np.testing.assert_array_equal(a["min"], age.min().reindex(a.index))
    assert (ard.loc[(ard["PARAMCD"] == "AGE") & (ard["STAT"] == "mean"), "UNIT"] == "YEARS").all()


@pytest.mark.parametrize("var", ["SEX", "RACE", "AGEGR1", "ETHNIC"])
def test_categorical_counts_match_adsl(sample_tlf, var):
    s = sample_tlf["RS001"]
    adsl = s.adam("ADSL")
    pop = _pop(adsl, "TRT01A").merge(adsl[["USUBJID", var]], on="USUBJID")
    exp = pop.groupby(["GRP1LVL", var])["USUBJID"].nunique()
    ard = s.ard("t-14-1-2")
    got = ard[(ard["PARAMCD"] == var) & (ard["STAT"] == "n")].set_index(
        ["GRP1LVL", "VARLVL"])["STATVAL"]
    assert dict(got.astype(int)) == dict(exp)
    N = pop.groupby("GRP1LVL")["USUBJID"].nunique()
    n_rows = ard[(ard["STAT"] == "N")].set_index("GRP1LVL")["STATVAL"]
    assert dict(n_rows.astype(int)) == dict(N)


def test_table_rows_and_levels(sample_tlf):
    s = sample_tlf["RS001"]
    ctx = TlfContext.open("RS001", s.base / "adam", load_catalog("RS001"))
    res = demog.summary(ctx, ctx.catalog.output("t-14-1-3"))
    body = res.table.body
    assert list(body.columns) == ["LABEL", "B-ALL", "B-NHL", ALL]
    assert res.table.headers[-1].endswith(f"(N={(ctx.adsl['SAFFL'] == 'Y').sum()})")
    labels = list(body["LABEL"])
    assert labels.index("  <65") < labels.index("  >=65")     # by AGEGR1N
    assert not body.isna().any().any()


def test_level_order_literal():
    adsl = pd.DataFrame({"G": ["b", "a", "", "c"], "GN": [2, 1, np.nan, 3],
                         "H": ["y", "x", "z", ""]})
    assert demog.level_order(adsl, "G") == ["a", "b", "c", demog.MISSING]
    assert demog.level_order(adsl, "H", ["z"]) == ["z", "x", "y", demog.MISSING]


def test_bad_params_are_clear_errors(sample_tlf):
    s = sample_tlf["RS001"]
    ctx = TlfContext.open("RS001", s.base / "adam", load_catalog("RS001"))
    base = {"id": "t-99", "type": "table", "title": "x", "population": "SAFFL",
            "datasets": ["ADSL"], "analysis": "demog.summary", "by": "TRT01A", "total": True}
    with pytest.raises(TlfInputError, match="NOSUCH"):
        demog.summary(ctx, OutputSpec(**base, params={"categorical": [{"var": "NOSUCH"}]}))
    with pytest.raises(TlfInputError, match="not numeric"):
        demog.summary(ctx, OutputSpec(**base, params={"numeric": [{"var": "SEX"}]}))
    with pytest.raises(TlfInputError, match="list"):
        demog.summary(ctx, OutputSpec(**base, params={"numeric": "AGE"}))
