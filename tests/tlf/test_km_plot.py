"""Kaplan-Meier figures (tlf.analyses.km_plot): byte-stable PNGs, the ARD behind what the
figure shows (KM statistics = the KM tables', numbers at risk = a direct count), lineage."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from clinpipe.paths import study_out
from tlf.analyses import km_plot
from tlf.analyses.base import ALL
from tlf.catalog import OutputSpec
from tlf.context import TlfContext
from tlf.format import DAYS_PER_MONTH

FIGURES = ["f-14-2-1", "f-14-2-2", "f-14-2-3", "f-14-2-4"]


def test_rerun_gives_identical_png_bytes(sample_tlf, tmp_path):
    from tlf.run import run_tlf

    adam = sample_tlf["RS001"].base / "adam"
    pngs = []
    for k in (1, 2):
        run_tlf("RS001", adam_dir=adam, out_root=tmp_path / f"r{k}", only=["f-14-2-3"],
                progress=lambda m: None)
        folder = study_out("RS001", "tlf", tmp_path / f"r{k}") / "png"
        pngs.append({p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))})
    assert sorted(pngs[0]) == ["f-14-2-3-1.png", "f-14-2-3-2.png"]   # one per PARAMCD
    assert pngs[0] == pngs[1]


@pytest.mark.parametrize("outid", FIGURES)
def test_each_figure_wrote_a_png(sample_tlf, outid):
    folder = sample_tlf["RS001"].tlf / "png"
    assert list(folder.glob(f"{outid}*.png"))


def test_figure_km_statistics_are_the_tables(sample_tlf):
    """f-14-2-1 (PFS) and t-14-2-6 (PFS) have the same population and groups."""
    s = sample_tlf["RS001"]
    fig, tab = s.ard("f-14-2-1"), s.ard("t-14-2-6")
    keys = ["GRP1LVL", "PARAMCD", "VARLVL", "STAT", "TIMEPT"]
    km = fig[(fig["VARLVL"] == "") & (fig["PARAMCD"] == "PFS")].set_index(keys)["STATVAL"]
    want = tab[tab["PARAMCD"] == "PFS"].set_index(keys)["STATVAL"]
    pd.testing.assert_series_equal(km.sort_index(), want.sort_index())


def test_numbers_at_risk_agree_with_adtte(sample_tlf):
    s = sample_tlf["RS001"]
    ard, adsl, adtte = s.ard("f-14-2-2"), s.adam("ADSL"), s.adam("ADTTE")
    pop = adsl[adsl["ENRLFL"] == "Y"]
    groups = pd.concat([pop[["USUBJID", "DISEASCD"]].rename(columns={"DISEASCD": "LVL"}),
                        pop[["USUBJID"]].assign(LVL=ALL)])
    os_ = adtte[adtte["PARAMCD"] == "OS"].merge(groups, on="USUBJID")
    risk = ard[ard["VARLVL"].str.startswith(km_plot.AT_RISK)]
    assert len(risk) and set(risk["STAT"]) == {"n"}
    for _, row in risk.iterrows():     # a few dozen rows
        month = float(row["TIMEPT"])
        want = os_[(os_["LVL"] == row["GRP1LVL"]) & (os_["AVAL"] >= month * DAYS_PER_MONTH)]
        assert row["STATVAL"] == want["USUBJID"].nunique(), (row["GRP1LVL"], month)
    at0 = risk[risk["TIMEPT"] == "0"].set_index("GRP1LVL")["STATVAL"]
    n = ard[(ard["STAT"] == "n") & (ard["VARLVL"] == "")].set_index("GRP1LVL")["STATVAL"]
    assert at0.to_dict() == n.to_dict()


def test_at_risk_lineage_names_the_subjects_at_risk(sample_tlf):
    s = sample_tlf["RS001"]
    ard, lin, adtte = s.ard("f-14-2-2"), s.lineage(), s.adam("ADTTE")
    m = (ard["VARLVL"] == km_plot.AT_RISK + "6") & (ard["GRP1LVL"] == ALL)
    row = ard.index[m][0] + 1
    got = set(lin.loc[(lin["OUTID"] == "f-14-2-2") & (lin["ARDROW"] == row), "USUBJID"])
    adsl = s.adam("ADSL")
    enrolled = adsl.loc[adsl["ENRLFL"] == "Y", "USUBJID"]
    os_ = adtte[(adtte["PARAMCD"] == "OS") & adtte["USUBJID"].isin(enrolled)]
    assert got == set(os_.loc[os_["AVAL"] >= 6 * DAYS_PER_MONTH, "USUBJID"])
    assert len(got) == ard.loc[m, "STATVAL"].iloc[0]


# ---- small literal frames --------------------------------------------------------------------
ADSL = pd.DataFrame({"USUBJID": [f"S{i}" for i in range(1, 7)], "EFFFL": ["Y"] * 6,
                     "ARM": ["A", "A", "A", "B", "B", "B"]})
ADTTE = pd.DataFrame({"USUBJID": [f"S{i}" for i in range(1, 7)], "ASEQ": range(1, 7),
                      "PARAMCD": "PFS", "PARAM": "Progression-Free Survival (Days)",
                      "AVAL": [30.0, 100.0, 200.0, 50.0, 120.0, 400.0],
                      "CNSR": [0, 1, 0, 0, 0, 1]})


def _run(adtte=ADTTE, by="ARM", **params):
    ctx = TlfContext("TEST", Path("/nonexistent"), None, "", _cache={"ADSL": ADSL,
                                                                      "ADTTE": adtte})
    spec = OutputSpec(id="f-99", type="figure", title="x", population="EFFFL",
                      datasets=["ADTTE"], analysis="km_plot.km_curves", by=by,
                      params={"paramcd": ["PFS"], **params})
    return km_plot.km_curves(ctx, spec)


def test_one_curve_per_group_with_censor_ticks():
    res = _run(tick_months=3)
    assert len(res.figures) == 1 and isinstance(res.figures[0], Figure)
    ax = res.figures[0].axes[0]
    steps = [ln for ln in ax.get_lines() if ln.get_linestyle() != "None"]
    assert [ln.get_label().split("\n")[0] for ln in steps] == ["A", "B"]
    a = steps[0]
    # the step curve starts at 100% at time 0 and ends at the KM estimate, in months
    assert a.get_xdata()[0] == 0 and a.get_ydata()[0] == 100
    np.testing.assert_allclose(a.get_xdata()[1:], np.array([30, 100, 200]) / DAYS_PER_MONTH)
    np.testing.assert_allclose(a.get_ydata()[1:], [100 * 2 / 3, 100 * 2 / 3, 0])
    ticks = [ln for ln in ax.get_lines() if ln.get_marker() == "|"]
    np.testing.assert_allclose(ticks[0].get_xdata(), [100 / DAYS_PER_MONTH])   # S2 censored
    assert list(ax.get_xticks()) == [0, 3, 6, 9, 12, 15]     # 400 days = 13.1 months


def test_overall_curve_without_by_and_at_risk_counts():
    res = _run(by="", tick_months=6)
    risk = res.ard[res.ard["VARLVL"].str.startswith(km_plot.AT_RISK)]
    got = risk.set_index("TIMEPT")["STATVAL"].to_dict()
    assert got == {"0": 6.0, "6": 2.0, "12": 1.0, "18": 0.0}
    assert set(risk["GRP1LVL"]) == {ALL}
    assert len(res.figures[0].axes[0].get_lines()) == 2     # curve + censor ticks


def test_missing_parameter_is_an_input_error():
    from tlf.context import TlfInputError
    with pytest.raises(TlfInputError, match="OS"):
        _run(paramcd=["OS"])
