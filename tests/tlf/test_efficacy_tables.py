"""RS001 efficacy tables (mappings/RS001/tlf/efficacy.yaml) against a direct recomputation from
ADSL / ADRS / ADTTE, and KM medians against lifelines (an independent implementation)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from tlf.analyses import response
from tlf.analyses.base import ALL
from tlf.catalog import OutputSpec, load_catalog
from tlf.context import TlfContext, TlfInputError
from tlf.stats import compute_clopper_pearson, compute_km

RATE_OUTPUTS = [  # output, disease, responder parameters
    ("t-14-2-1", "B-NHL", ["ORR", "CR", "DCR"]),
    ("t-14-2-2", "B-NHL", ["ORRLYR"]),
    ("t-14-2-3", "B-NHL", ["ORRM3"]),
    ("t-14-2-4", "B-ALL", ["CRC", "MRDCRC"]),
]
BOR_OUTPUTS = [("t-14-2-1", "B-NHL", "BOR"), ("t-14-2-2", "B-NHL", "BORLYR"),
               ("t-14-2-4", "B-ALL", "BORNCCN")]
# output, population flag, disease ('' = all), parameters, by, responder parameters
KM_OUTPUTS = [
    ("t-14-2-5", "EFFFL", "", ["DOR"], "DISEASCD", ["ORR", "CRC"]),
    ("t-14-2-6", "EFFFL", "B-NHL", ["PFS"], "TRT01A", []),
    ("t-14-2-7", "ENRLFL", "", ["OS"], "TRT01A", []),
    ("t-14-2-8", "EFFFL", "B-ALL", ["RFS"], "TRT01A", []),
    ("t-14-2-9", "EFFFL", "B-ALL", ["EFS", "EFSSENS"], "TRT01A", []),
]


def _population(adsl, flag, disease, by) -> pd.DataFrame:
    """USUBJID -> GRP1LVL, each subject in its `by` level and in All subjects."""
    pop = adsl[(adsl[flag] == "Y") & ((adsl["DISEASCD"] == disease) if disease else True)]
    own = pop.loc[pop[by].fillna("") != "", ["USUBJID", by]].rename(columns={by: "GRP1LVL"})
    return pd.concat([own, pop[["USUBJID"]].assign(GRP1LVL=ALL)], ignore_index=True)


def _stat(ard, stat, **keys):
    m = ard["STAT"] == stat
    for k, v in keys.items():
        m &= ard[k] == v
    return ard.loc[m].set_index("GRP1LVL")["STATVAL"]


@pytest.mark.parametrize("outid,disease,codes", RATE_OUTPUTS)
def test_rates_and_clopper_pearson_agree_with_adrs(sample_tlf, outid, disease, codes):
    s = sample_tlf["RS001"]
    ard, adsl, adrs = s.ard(outid), s.adam("ADSL"), s.adam("ADRS")
    pop = _population(adsl, "EFFFL", disease, "TRT01A")
    N = pop.groupby("GRP1LVL")["USUBJID"].nunique()
    got_N = _stat(ard, "N")
    assert got_N.sort_index().to_dict() == N.sort_index().to_dict()
    for code in codes:
        yes = adrs.loc[(adrs["PARAMCD"] == code) & (adrs["AVALC"] == "Y"), "USUBJID"]
        n = pop[pop["USUBJID"].isin(yes)].groupby("GRP1LVL")["USUBJID"].nunique()
        n = n.reindex(N.index, fill_value=0)
        pct, lcl, ucl = compute_clopper_pearson(n.to_numpy(), N.to_numpy())
        got_n = _stat(ard, "n", PARAMCD=code).reindex(N.index, fill_value=0)
        np.testing.assert_array_equal(got_n.to_numpy(), n.to_numpy())
        present = n[n > 0].index   # a cell with no responder has no ARD row (prints 0)
        for stat, want in (("pct", pct), ("lcl", lcl), ("ucl", ucl)):
            want = pd.Series(want, index=N.index)[present]
            got = _stat(ard, stat, PARAMCD=code)[present]
            np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("outid,disease,bor", BOR_OUTPUTS)
def test_bor_distribution_adds_up_to_n(sample_tlf, outid, disease, bor):
    s = sample_tlf["RS001"]
    ard, adsl, adrs = s.ard(outid), s.adam("ADSL"), s.adam("ADRS")
    pop = _population(adsl, "EFFFL", disease, "TRT01A")
    N = _stat(ard, "N")
    cats = ard[(ard["PARAMCD"] == bor) & (ard["STAT"] == "n")]
    sums = cats.groupby("GRP1LVL")["STATVAL"].sum()
    assert sums.reindex(N.index).to_dict() == N.to_dict()
    want = (pop.merge(adrs.loc[adrs["PARAMCD"] == bor, ["USUBJID", "AVALC"]], on="USUBJID")
            .groupby(["GRP1LVL", "AVALC"])["USUBJID"].nunique())
    got = cats.set_index(["GRP1LVL", "VARLVL"])["STATVAL"]
    assert got.sort_index().to_dict() == want.rename_axis(["GRP1LVL", "VARLVL"]).sort_index(
        ).astype(float).to_dict()


def test_orr_lineage_names_the_responders(sample_tlf):
    s = sample_tlf["RS001"]
    ard, adrs, lin = s.ard("t-14-2-1"), s.adam("ADRS"), s.lineage()
    row = ard.index[(ard["STAT"] == "n") & (ard["PARAMCD"] == "ORR")
                    & (ard["GRP1LVL"] == ALL)][0] + 1
    got = set(lin.loc[(lin["OUTID"] == "t-14-2-1") & (lin["ARDROW"] == row), "USUBJID"])
    adsl = s.adam("ADSL")
    bnhl = adsl.loc[(adsl["EFFFL"] == "Y") & (adsl["DISEASCD"] == "B-NHL"), "USUBJID"]
    want = set(adrs.loc[(adrs["PARAMCD"] == "ORR") & (adrs["AVALC"] == "Y")
                        & adrs["USUBJID"].isin(bnhl), "USUBJID"])
    assert got == want and want


@pytest.mark.parametrize("outid,flag,disease,codes,by,responders", KM_OUTPUTS)
def test_km_median_agrees_with_lifelines(sample_tlf, outid, flag, disease, codes, by,
                                         responders):
    s = sample_tlf["RS001"]
    ard, adsl, adtte, adrs = s.ard(outid), s.adam("ADSL"), s.adam("ADTTE"), s.adam("ADRS")
    pop = _population(adsl, flag, disease, by)
    rec = adtte[adtte["PARAMCD"].isin(codes) & adtte["AVAL"].notna()]
    if responders:
        yes = adrs.loc[adrs["PARAMCD"].isin(responders) & (adrs["AVALC"] == "Y"), "USUBJID"]
        rec = rec[rec["USUBJID"].isin(yes)]
    rec = rec.merge(pop, on="USUBJID")
    checked = 0
    for (lv, code), cell in rec.groupby(["GRP1LVL", "PARAMCD"]):
        t = cell["AVAL"].to_numpy(float)
        e = (cell["CNSR"] == 0).to_numpy(int)
        keys = {"GRP1LVL": lv, "PARAMCD": code, "VARLVL": ""}
        got = {st: float(_stat(ard, st, **keys).iloc[0])
               for st in ("n", "events", "censored", "km_median", "km_median_lcl",
                          "km_median_ucl")}
        assert (got["n"], got["events"], got["censored"]) == (len(t), e.sum(), len(t) - e.sum())
        kmf = KaplanMeierFitter().fit(t, e)
        ll = float(kmf.median_survival_time_)
        sf = kmf.survival_function_.iloc[:, 0]
        flat = np.isclose(sf.to_numpy(), 0.5, rtol=0, atol=1e-9)
        if flat.any():
            # a curve flat at S = 0.5: lifelines takes the first time S <= 0.5 in exact
            # floating point (start or end of the stretch, by rounding noise); R's
            # quantile.survfit -- and tlf.stats, see its docstring -- the stretch's midpoint,
            # to the last follow-up time if S never drops below 0.5
            start = sf.index[flat].min()
            below = sf.index[sf.to_numpy() < 0.5 - 1e-9]
            ll = (start + (below.min() if len(below) else t.max())) / 2
        if np.isinf(ll):
            assert np.isnan(got["km_median"])
        else:
            assert got["km_median"] == pytest.approx(ll, abs=1e-9), (lv, code)
        fit = compute_km(t, e)
        np.testing.assert_allclose([got["km_median"], got["km_median_lcl"], got["km_median_ucl"]],
                                   [fit.median, fit.median_lcl, fit.median_ucl], equal_nan=True)
        checked += 1
    assert checked >= len(codes)


def test_every_rs001_efficacy_endpoint_has_an_output():
    cat = load_catalog("RS001")
    answered = {e for o in cat.outputs for e in o.endpoints}
    assert {"ORR", "CRC", "DCR", "DOR", "PFS", "OS", "ORRM3", "RFS", "EFS"} <= answered


def test_each_km_table_heading_names_its_population():
    cat = load_catalog("RS001")
    for outid, *_ in KM_OUTPUTS:
        labels = cat.output(outid).params.get("labels", {})
        assert set(labels) == set(cat.output(outid).params["paramcd"]), outid


# ---- small literal frames --------------------------------------------------------------------
def _ctx(adsl, adrs) -> TlfContext:
    return TlfContext("TEST", Path("/nonexistent"), None, "2025-01-01",
                      _cache={"ADSL": adsl, "ADRS": adrs})


def _bor_spec(**params) -> OutputSpec:
    base = {"bor": "BOR", "categories": {"CR": "CR", "PR": "PR", "NE": "NE"}, "rates": ["ORR"]}
    return OutputSpec(id="t-99", type="table", title="x", population="EFFFL",
                      datasets=["ADSL", "ADRS"], analysis="response.bor_table",
                      params={**base, **params}, by="TRT01A", total=True)


ADSL = pd.DataFrame({"USUBJID": ["S1", "S2", "S3", "S4"], "EFFFL": ["Y", "Y", "Y", "N"],
                     "TRT01A": ["A", "A", "B", "B"], "TRT01AN": [1, 1, 2, 2]})
ADRS = pd.DataFrame({"USUBJID": ["S1", "S2", "S1", "S2", "S4"], "ASEQ": [1, 2, 3, 4, 5],
                     "PARAMCD": ["BOR", "BOR", "ORR", "ORR", "BOR"],
                     "PARAM": ["Best", "Best", "Resp", "Resp", "Best"],
                     "AVALC": ["CR", "PR", "Y", "Y", "CR"]})


def test_subject_without_bor_counts_as_ne_so_columns_add_up():
    res = response.bor_table(_ctx(ADSL, ADRS), _bor_spec())
    ard = res.ard
    ne = ard[(ard["VARLVL"] == "NE") & (ard["STAT"] == "n")].set_index("GRP1LVL")["STATVAL"]
    assert ne.to_dict() == {"B": 1.0, ALL: 1.0}    # S3 has no BOR; S4 is not in EFFFL
    mem = res.members
    assert set(mem.loc[mem["VARLVL"] == "NE", "DATASET"]) == {"ADSL"}
    sums = ard[(ard["PARAMCD"] == "BOR") & (ard["STAT"] == "n")].groupby("GRP1LVL")["STATVAL"].sum()
    assert sums.to_dict() == {"A": 2.0, "B": 1.0, ALL: 3.0}
    orr = ard[(ard["PARAMCD"] == "ORR") & (ard["STAT"] == "pct")].set_index("GRP1LVL")["STATVAL"]
    assert orr.to_dict() == {"A": 100.0, ALL: pytest.approx(200 / 3)}
    assert list(res.table.body["LABEL"][:4]) == ["Best, n (%)", "  CR", "  PR", "  NE"]


def test_unlisted_bor_category_is_an_input_error():
    adrs = ADRS.assign(AVALC=["CR", "SD", "Y", "Y", "CR"])
    with pytest.raises(TlfInputError, match="SD"):
        response.bor_table(_ctx(ADSL, adrs), _bor_spec())


def test_missing_parameter_is_an_input_error():
    with pytest.raises(TlfInputError, match="NOPE"):
        response.bor_table(_ctx(ADSL, ADRS), _bor_spec(rates=["NOPE"]))
