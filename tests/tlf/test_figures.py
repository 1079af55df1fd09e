"""RS001 figures: cellular-kinetics profiles (f-14-4-1), swimmer (f-14-2-20) and waterfall
(f-14-2-21). The ARD counts agree with an independent recomputation from ADaM (and SDTM TR for
the SPD), and the PNG is byte-identical when the output is built again."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

PROFILE, SWIMMER, WATERFALL = "f-14-4-1", "f-14-2-20", "f-14-2-21"


def _pop(run, flag, diseases=None):
    adsl = run.adam("ADSL")
    pop = adsl[adsl[flag] == "Y"]
    if diseases:
        pop = pop[pop["DISEASCD"].isin(diseases)]
    return pop


def test_profile_ard_n_per_timepoint(sample_tlf):
    run = sample_tlf["RS001"]
    ard = run.ard(PROFILE)
    adpc = run.adam("ADPC")
    pop = _pop(run, "PKFL")[["USUBJID", "TRT01A"]]
    used = adpc[(adpc["ANL01FL"] == "Y") & (adpc["AVAL"].notna() | (adpc["BLQFL"] == "Y"))]
    used = used.merge(pop, on="USUBJID", suffixes=("_PC", ""))
    expect = used.groupby(["PARAMCD", "ATPT", "TRT01A"]).size()
    got = ard[ard["STAT"] == "n"].set_index(["PARAMCD", "VARLVL", "GRP1LVL"])["STATVAL"]
    assert len(got) == len(expect)
    for key, n in expect.items():
        assert got[key] == n, key
    # the plotted median: BLQ before Tmax counts as 0 (ADPC ANL01FL), as in the NCA
    vals = used.assign(V=used["AVAL"].where(used["BLQFL"] != "Y", 0.0))
    med = vals.groupby(["PARAMCD", "ATPT", "TRT01A"])["V"].median()
    got_med = ard[ard["STAT"] == "median"].set_index(["PARAMCD", "VARLVL", "GRP1LVL"])["STATVAL"]
    for key, m in med.items():
        assert got_med[key] == pytest.approx(m), key


def test_swimmer_ard_agrees_with_adam(sample_tlf):
    run = sample_tlf["RS001"]
    ard = run.ard(SWIMMER)
    pop = _pop(run, "EFFFL", ["B-NHL", "B-ALL"])
    end = pd.concat([pd.to_datetime(pop["LSTALVDT"]), pd.to_datetime(pop["DTHDT"])],
                    axis=1).max(axis=1)
    dur = (end - pd.to_datetime(pop["TRTSDT"])).dt.days
    bars = pop.assign(DUR=dur)[dur.notna()]
    n = ard[(ard["PARAMCD"] == "FUDUR") & (ard["STAT"] == "n")].set_index("GRP1LVL")["STATVAL"]
    assert n["All subjects"] == len(bars)
    for level, k in bars.groupby("TRT01A").size().items():
        assert n[level] == k
    med = ard[(ard["PARAMCD"] == "FUDUR") & (ard["STAT"] == "median")].set_index("GRP1LVL")
    assert med.loc["All subjects", "STATVAL"] == pytest.approx(bars["DUR"].median())
    assert med.loc["All subjects", "UNIT"] == "DAYS"
    # subjects with >= 1 assessment of each response, under their disease's criteria
    adrs = run.adam("ADRS")
    crit = {"B-NHL": "OVRLUG", "B-ALL": "OVRNCCN"}
    ovr = adrs.merge(bars[["USUBJID", "DISEASCD"]], on="USUBJID", suffixes=("_RS", ""))
    ovr = ovr[ovr["PARAMCD"] == ovr["DISEASCD"].map(crit)]
    expect = ovr.groupby(["PARAMCD", "AVALC"])["USUBJID"].nunique()
    got = ard[(ard["STAT"] == "n") & (ard["GRP1LVL"] == "All subjects")
              & ard["PARAMCD"].isin(crit.values())].set_index(["PARAMCD", "VARLVL"])["STATVAL"]
    assert got.sort_index().to_dict() == expect.astype(float).sort_index().to_dict()
    deaths = ard[(ard["PARAMCD"] == "DEATH") & (ard["STAT"] == "n")
                 & (ard["GRP1LVL"] == "All subjects")]["STATVAL"]
    assert deaths.iloc[0] == bars["DTHDT"].notna().sum()


def test_waterfall_best_change_from_tr(sample_tlf):
    run = sample_tlf["RS001"]
    ard = run.ard(WATERFALL)
    tr = pd.read_parquet(run.base / "sdtm" / "tr.parquet")
    spd = tr[(tr["TRTESTCD"] == "SUMPPD") & (tr["TREVAL"] == "INVESTIGATOR")]
    pop = _pop(run, "EFFFL", ["B-NHL"])
    spd = spd[spd["USUBJID"].isin(pop["USUBJID"])]
    base = spd[spd["TRLOBXFL"] == "Y"].set_index("USUBJID")
    post = spd[spd["TRLOBXFL"] != "Y"].copy()
    post = post[post["TRDY"] > post["USUBJID"].map(base["TRDY"])]
    post["PCT"] = 100 * (post["TRSTRESN"] / post["USUBJID"].map(base["TRSTRESN"]) - 1)
    best = post.groupby("USUBJID")["PCT"].min()
    cell = ard[(ard["PARAMCD"] == "BESTPCHG") & (ard["GRP1LVL"] == "All subjects")]
    got = cell.set_index("STAT")["STATVAL"]
    assert got["n"] == len(best) > 0
    assert got["median"] == pytest.approx(best.median())
    assert got["min"] == pytest.approx(best.min())
    assert got["max"] == pytest.approx(best.max())
    assert (cell["UNIT"][cell["STAT"] != "n"] == "%").all()
    # bars by BOR: subjects counted per BOR category
    bor = run.adam("ADRS").query("PARAMCD == 'BOR'")
    bor = bor[bor["USUBJID"].isin(best.index)]
    got_bor = ard[(ard["STAT"] == "n") & (ard["PARAMCD"] == "BOR")
                  & (ard["GRP1LVL"] == "All subjects")].set_index("VARLVL")["STATVAL"]
    assert got_bor.to_dict() == bor["AVALC"].value_counts().astype(float).to_dict()


def test_best_change_edge_cases():
    from tlf.analyses.waterfall import best_change

    tr = pd.DataFrame({
        "USUBJID": ["A", "A", "A", "B", "C", "C"],
        "TRSEQ": [1.0, 2, 3, 1, 1, 2],
        "TRTESTCD": "SUMPPD",
        "TRSTRESN": [200.0, 50.0, 300.0, 100.0, 0.0, 10.0],
        "TRLOBXFL": ["Y", "", "", "Y", "Y", ""],
        "TRDY": [-5.0, 30, 90, -3, -2, 30],
        "TREVAL": "INVESTIGATOR",
    })
    out = best_change(tr, "SUMPPD", "INVESTIGATOR").set_index("USUBJID")
    # A: best is the nadir (-75%), not the later progression; B: no post-baseline value;
    # C: baseline 0 has no percent change
    assert list(out.index) == ["A"]
    assert out.loc["A", "PCHG"] == pytest.approx(-75.0)
    assert out.loc["A", "TRSEQ"] == 2


@pytest.mark.parametrize("outid", [PROFILE, SWIMMER, WATERFALL])
def test_png_byte_identical_on_rebuild(sample_tlf, outid):
    import matplotlib.pyplot as plt

    from tlf.catalog import load_catalog
    from tlf.context import TlfContext
    from tlf.run import PNG_DPI, build_output

    run = sample_tlf["RS001"]
    cat = load_catalog("RS001")
    ctx = TlfContext.open("RS001", run.base / "adam", cat)
    result = build_output(ctx, cat.output(outid))
    assert len(result.figures) == 1
    buf = io.BytesIO()
    result.figures[0].savefig(buf, dpi=PNG_DPI, metadata={"Software": None}, format="png")
    plt.close(result.figures[0])
    assert buf.getvalue() == (run.tlf / "png" / f"{outid}.png").read_bytes()


def test_members_are_the_plotted_records(sample_tlf):
    run = sample_tlf["RS001"]
    lin = run.lineage()
    for outid, dataset in ((PROFILE, "ADPC"), (SWIMMER, "ADRS")):
        got = lin[(lin["OUTID"] == outid) & (lin["ADDSN"] == dataset)]
        assert len(got) > 0 and got["ADSEQ"].notna().all(), outid
    assert np.isin(["ADSL", "ADRS"], lin.loc[lin["OUTID"] == WATERFALL, "ADDSN"].unique()).all()
