"""GLOCART tables (STUDIES.md 2) against direct recomputations from the ADaM (and, for the
cell collections, SDTM PR/SUPPPR), plus literal-frame edge cases."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from clinpipe.errors import ClinpipeError
from tlf.analyses import collection, consolidation
from tlf.analyses.base import ALL, subject_groups
from tlf.catalog import OutputSpec, load_catalog
from tlf.context import TlfContext


def _value(ard, stat, **keys):
    m = ard["STAT"] == stat
    for k, v in keys.items():
        m &= ard[k] == v
    assert m.sum() == 1, (stat, keys, m.sum())
    return float(ard.loc[m, "STATVAL"].iloc[0])


def _n(ard, **keys):
    m = (ard["STAT"] == "n")
    for k, v in keys.items():
        m &= ard[k] == v
    return float(ard.loc[m, "STATVAL"].sum()) if m.any() else 0.0


@pytest.fixture(scope="module")
def glo(sample_tlf):
    return sample_tlf["GLOCART"]


def test_every_endpoint_has_an_output():
    cat = load_catalog("GLOCART")
    answered = {e for o in cat.outputs for e in o.endpoints}
    assert {e.id for e in cat.endpoints} - answered == set()


@pytest.mark.parametrize("outid,where", [("t-14-2-2", None), ("t-14-2-3", "Y"), ("t-14-2-4", "N")])
def test_response_after_cart_matches_adrs(glo, outid, where):
    adsl, adrs = glo.adam("ADSL"), glo.adam("ADRS")
    ard = glo.ard(outid)
    pop = adsl[(adsl["CARTFL"] == "Y") & ((adsl["CONSFL"] == where) if where else True)]
    for code in ("CRPOST", "ORRPOST"):
        yes = set(adrs.loc[(adrs["PARAMCD"] == code) & (adrs["AVALC"] == "Y"), "USUBJID"])
        by = pop.assign(R=pop["USUBJID"].isin(yes)).groupby("TRT01A")["R"].agg(["sum", "size"])
        for cohort, row in by.iterrows():
            assert _n(ard, PARAMCD=code, GRP1LVL=cohort) == row["sum"]
            assert _value(ard, "N", GRP1LVL=cohort) == row["size"]
            if row["sum"]:
                assert _value(ard, "pct", PARAMCD=code, GRP1LVL=cohort) == pytest.approx(
                    100 * row["sum"] / row["size"])
        assert _n(ard, PARAMCD=code, GRP1LVL=ALL) == by["sum"].sum()
        assert _value(ard, "N", GRP1LVL=ALL) == len(pop)


def test_response_before_cart_is_in_the_glofitamab_treated(glo):
    adsl, adrs = glo.adam("ADSL"), glo.adam("ADRS")
    ard = glo.ard("t-14-2-1")
    saf = set(adsl.loc[adsl["SAFFL"] == "Y", "USUBJID"])
    yes = adrs[(adrs["PARAMCD"] == "CRPRE") & (adrs["AVALC"] == "Y") & adrs["USUBJID"].isin(saf)]
    assert _n(ard, PARAMCD="CRPRE", GRP1LVL=ALL) == yes["USUBJID"].nunique()
    assert _value(ard, "N", GRP1LVL=ALL) == len(saf)


def test_pfst_events_match_adtte(glo):
    adsl, adtte = glo.adam("ADSL"), glo.adam("ADTTE")
    ard = glo.ard("t-14-2-5")
    saf = adsl.loc[adsl["SAFFL"] == "Y", ["USUBJID", "TRT01A"]]
    pfst = adtte[adtte["PARAMCD"] == "PFST"].merge(saf, on="USUBJID")
    events = pfst[pfst["CNSR"] == 0].groupby("TRT01A").size()
    for cohort, n in events.items():
        assert _value(ard, "events", PARAMCD="PFST", GRP1LVL=cohort) == n
    assert _value(ard, "events", PARAMCD="PFST", GRP1LVL=ALL) == (pfst["CNSR"] == 0).sum()
    assert _value(ard, "censored", PARAMCD="PFST", GRP1LVL=ALL) == (pfst["CNSR"] != 0).sum()


def _collection_truth(glo, mnc_target=3.0, cd34_target=2.0):
    adsl = glo.adam("ADSL")
    sdtm = glo.base / "sdtm"
    pr = pd.read_parquet(sdtm / "pr.parquet")
    supp = pd.read_parquet(sdtm / "supppr.parquet")
    supp = supp.assign(PRSEQ=supp["IDVARVAL"].astype(float))
    wide = pr.merge(supp, on=["USUBJID", "PRSEQ"])
    mnc = wide[(wide["PRTRT"] == "LYMPHOCYTE APHERESIS") & (wide["QNAM"] == "MNCYLD")]
    cd34 = wide[(wide["PRTRT"] == "PERIPHERAL BLOOD STEM CELL COLLECTION") & (wide["QNAM"] == "CD34YLD")]
    tot_mnc = mnc.assign(V=mnc["QVAL"].astype(float)).groupby("USUBJID")["V"].sum()
    tot_cd34 = cd34.assign(V=cd34["QVAL"].astype(float)).groupby("USUBJID")["V"].sum()
    saf = adsl[adsl["SAFFL"] == "Y"].set_index("USUBJID")
    t = pd.DataFrame({"TRT01A": saf["TRT01A"],
                      "MNC": tot_mnc.reindex(saf.index) >= mnc_target,
                      "CD34": tot_cd34.reindex(saf.index) >= cd34_target})
    t["BOTH"] = t["MNC"] & t["CD34"]
    return t, tot_cd34


def test_collection_targets_recomputed(glo):
    ard = glo.ard("t-14-4-1")
    truth, tot_cd34 = _collection_truth(glo)
    for col, code in (("MNC", "MNCYLD"), ("CD34", "CD34YLD"), ("BOTH", "COLLECT")):
        for cohort, n in truth.groupby("TRT01A")[col].sum().items():
            assert _n(ard, PARAMCD=code, VARLVL="TARGET MET", GRP1LVL=cohort) == n, (col, cohort)
        assert _n(ard, PARAMCD=code, VARLVL="TARGET MET", GRP1LVL=ALL) == truth[col].sum()
    saf_cd34 = tot_cd34.reindex(truth.index).dropna()
    assert _value(ard, "median", PARAMCD="CD34YLD", GRP1LVL=ALL) == pytest.approx(saf_cd34.median())
    assert _value(ard, "N", GRP1LVL=ALL) == len(truth)


def test_collection_lineage_reaches_pr(glo):
    lin = glo.lineage()
    lin = lin[lin["OUTID"] == "t-14-4-1"]
    pr_rows = lin[lin["ADDSN"] == "PR"]
    assert len(pr_rows) and (pr_rows["SRCDOM"] == "PR").all()


def test_day28_cross_tab_sums_to_n(glo):
    ard = glo.ard("t-14-2-9")
    adsl, adrs = glo.adam("ADSL"), glo.adam("ADRS")
    cross = ard[(ard["PARAMCD"] == "D28CROSS") & (ard["GRP2"] == "") & (ard["STAT"] == "n")]
    for lv, n in cross.groupby("GRP1LVL")["STATVAL"].sum().items():
        assert n == _value(ard, "N", GRP1LVL=lv)
    cart = set(adsl.loc[adsl["CARTFL"] == "Y", "USUBJID"])
    d28 = adrs["PARAMCD"].isin(["D28DEAUV", "D28CTDNA", "CONSIND"])
    d = adrs[adrs["USUBJID"].isin(cart) & d28].pivot(index="USUBJID", columns="PARAMCD", values="AVALC")
    high = d["D28DEAUV"].isin(["4", "5"])
    pos = d["D28CTDNA"] == "POSITIVE"
    assert _n(ard, PARAMCD="D28CROSS", GRP2="", GRP1LVL=ALL,
              VARLVL="Deauville 4-5 / ctDNA Positive") == (high & pos).sum()
    cons = set(adsl.loc[adsl["CONSFL"] == "Y", "USUBJID"])
    d = d.reindex(sorted(cart))
    recd = d.index.isin(list(cons))
    assert _n(ard, PARAMCD="D28CROSS", GRP2="CONSFL", GRP1LVL=ALL,
              VARLVL="Deauville 1-3 / ctDNA Negative") == ((~high) & (~pos) & recd).sum()
    assert _n(ard, PARAMCD="CONSIND", VARLVL="Y", GRP1LVL=ALL) == (d["CONSIND"] == "Y").sum()


# -- literal frames --------------------------------------------------------------------------

class _Ctx(SimpleNamespace):
    sdtm = TlfContext.sdtm      # the real SDTM reader over sdtm_dir

    def groups(self, spec):
        return subject_groups(self.adsl, spec.population, spec.by, spec.total, spec.where)

    def dataset(self, name, columns=None):
        df = self.data[name]
        return df[columns] if columns else df


def _spec(**kw):
    base = {"id": "t-99-1", "type": "table", "title": "x", "population": "SAFFL", "datasets": ["ADSL"],
                "analysis": "x.y", "total": True}
    return OutputSpec(**{**base, **kw})


D28_PARAMS = {"deauville": {"paramcd": "D28DEAUV", "groups": {"1-3": ["1", "2", "3"], "4-5": ["4", "5"]}},
              "ctdna": {"paramcd": "D28CTDNA", "groups": {"Negative": ["NEGATIVE"], "Positive": ["POSITIVE"]}},
              "indicated": "CONSIND", "agrees": "CONSAGR", "received": "CONSFL"}


def test_day28_missing_assessment_is_its_own_line():
    adsl = pd.DataFrame({"USUBJID": ["A", "B", "C"], "SAFFL": "Y", "CONSFL": ["Y", "N", "N"]})
    rows = [("A", 1, "D28DEAUV", "5"), ("A", 2, "D28CTDNA", "NEGATIVE"), ("A", 3, "CONSIND", "Y"),
            ("A", 4, "CONSAGR", "Y"), ("B", 1, "D28DEAUV", "2"), ("B", 2, "CONSIND", "N"),
            ("B", 3, "CONSAGR", "Y")]
    adrs = pd.DataFrame(rows, columns=["USUBJID", "ASEQ", "PARAMCD", "AVALC"]).assign(PARAM="p")
    ctx = _Ctx(adsl=adsl, data={"ADSL": adsl, "ADRS": adrs}, adam_dir=Path("."))
    res = consolidation.day28(ctx, _spec(params=D28_PARAMS))
    ard = res.ard
    cross = ard[(ard["PARAMCD"] == "D28CROSS") & (ard["GRP2"] == "") & (ard["STAT"] == "n")]
    assert cross["STATVAL"].sum() == 3
    assert _n(ard, PARAMCD="D28CROSS", GRP2="", VARLVL="Deauville Missing / ctDNA Missing") == 1
    assert _n(ard, PARAMCD="D28CTDNA", VARLVL="Missing") == 2
    assert _n(ard, PARAMCD="D28CROSS", GRP2="CONSIND", VARLVL="Deauville 4-5 / ctDNA Negative") == 1
    assert "  Deauville Missing / ctDNA Missing" in list(res.table.body["LABEL"])


def test_collection_sums_days_and_misses_without_procedure(tmp_path):
    adsl = pd.DataFrame({"USUBJID": ["A", "B", "C"], "SAFFL": "Y"})
    pr = pd.DataFrame({"USUBJID": ["A", "A", "A", "B", "B"], "PRSEQ": [1.0, 2, 3, 1, 2],
                       "PRTRT": ["APH", "SCC", "SCC", "APH", "SCC"]})
    q = [("A", 1, "MNCYLD", "3.0"), ("A", 2, "CD34YLD", "1.2"), ("A", 3, "CD34YLD", "0.8"),
         ("B", 1, "MNCYLD", "2.99"), ("B", 2, "CD34YLD", "5")]
    supp = pd.DataFrame(q, columns=["USUBJID", "IDVARVAL", "QNAM", "QVAL"]).assign(
        IDVAR="PRSEQ", IDVARVAL=lambda d: d["IDVARVAL"].astype(str),
        QLABEL=lambda d: d["QNAM"].map({"MNCYLD": "MNC (10^8/kg)", "CD34YLD": "CD34 (10^6/kg)"}))
    pr.to_parquet(tmp_path / "pr.parquet")
    supp.to_parquet(tmp_path / "supppr.parquet")
    ctx = _Ctx(adsl=adsl, data={"ADSL": adsl}, sdtm_dir=tmp_path, adam_dir=tmp_path, _cache={})
    params = {"procedures": [
        {"prtrt": "APH", "yield": "MNCYLD", "label": "a", "unit": "10^8/kg", "target": 3.0},
        {"prtrt": "SCC", "yield": "CD34YLD", "label": "s", "unit": "10^6/kg", "target": 2.0}]}
    ard = collection.yields(ctx, _spec(params=params)).ard
    assert _n(ard, PARAMCD="MNCYLD", VARLVL="TARGET MET") == 1          # 3.0 meets, 2.99 not
    assert _n(ard, PARAMCD="CD34YLD", VARLVL="TARGET MET") == 2         # 1.2 + 0.8 = 2.0
    assert _n(ard, PARAMCD="COLLECT", VARLVL="TARGET MET") == 1
    assert _value(ard, "pct", PARAMCD="COLLECT", VARLVL="TARGET MET") == pytest.approx(100 / 3)
    assert _n(ard, PARAMCD="CD34YLD", VARLVL="COLLECTED") == 2
    assert _value(ard, "max", PARAMCD="CD34YLD") == 5.0


def test_collection_unit_mismatch_is_a_clear_error(tmp_path):
    adsl = pd.DataFrame({"USUBJID": ["A"], "SAFFL": "Y"})
    pd.DataFrame({"USUBJID": ["A"], "PRSEQ": [1.0], "PRTRT": ["APH"]}).to_parquet(tmp_path / "pr.parquet")
    pd.DataFrame({"USUBJID": ["A"], "IDVAR": "PRSEQ", "IDVARVAL": "1", "QNAM": "MNCYLD",
                  "QLABEL": "MNC (10^8/kg)", "QVAL": "4"}).to_parquet(tmp_path / "supppr.parquet")
    ctx = _Ctx(adsl=adsl, data={"ADSL": adsl}, sdtm_dir=tmp_path, adam_dir=tmp_path, _cache={})
    params = {"procedures": [{"prtrt": "APH", "yield": "MNCYLD", "label": "a", "unit": "10^6/kg",
                              "target": 3.0}]}
    with pytest.raises(ClinpipeError, match="10\\^6/kg"):
        collection.yields(ctx, _spec(params=params))
    ctx.sdtm_dir, ctx._cache = None, {}
    with pytest.raises(ClinpipeError, match="SDTM PR"):
        collection.yields(ctx, _spec(params=params))


def test_km_figures_agree_with_the_tables(glo):
    for fig, table, code in (("f-14-2-1", "t-14-2-5", "PFST"), ("f-14-2-2", "t-14-2-6", "PFSC"),
                             ("f-14-2-3", "t-14-2-7", "OS")):
        f, t = glo.ard(fig), glo.ard(table)
        for stat in ("events", "censored", "km_median"):
            assert _value(f, stat, PARAMCD=code, GRP1LVL=ALL) == pytest.approx(
                _value(t, stat, PARAMCD=code, GRP1LVL=ALL), nan_ok=True), (fig, stat)
