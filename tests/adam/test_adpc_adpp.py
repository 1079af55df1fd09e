"""ADPC and ADPP from a PC dataset built by hand (standard SDTMIG 3.4 PC variables only), and
on the sample SDTM built by the pipeline (with ADEX, and GLOCART without PC)."""
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from adam.adpc import build_adpc, compute_duration_days
from adam.adpp import build_adpp
from adam.cutoff import CutoffView
from adam.merged import RuleError
from adam.metadata import load_spec
from adam.read import read_sdtm
from adam.write import conform
from clinpipe.config import load_study

LN2 = math.log(2)
CUT = dt.date(2025, 5, 27)
QPCR, FLOW = "REAL-TIME POLYMERASE CHAIN REACTION ASSAY", "FLOW CYTOMETRY"
INF = pd.Timestamp("2024-01-10T10:00")
S1, S2, S3 = "RS001-101-001", "RS001-101-002", "RS001-101-003"


def _adsl():
    # built by hand so these tests do not depend on the ADSL builder; S3 was never infused
    return pd.DataFrame({
        "STUDYID": "RS001", "USUBJID": [S1, S2, S3], "SUBJID": ["101-001", "101-002", "101-003"],
        "SITEID": "101", "ARMCD": "ESC_DL2", "TRT01P": "DL2 3x10^6 CAR+ cells/kg", "TRT01PN": 2.0,
        "TRT01A": "DL2 3x10^6 CAR+ cells/kg", "TRT01AN": 2.0,
        "TRTSDT": [INF.normalize(), INF.normalize(), pd.NaT], "TRTSDTM": [INF, INF, pd.NaT]})


def _at(days: float, late_hours: float = 0.0) -> str:
    return (INF + pd.Timedelta(days=days) + pd.Timedelta(hours=late_hours)).strftime("%Y-%m-%dT%H:%M")


# S1 qPCR: pre-infusion BLQ, Day 1 BLQ (before Tmax), then an exact exponential decline with a
# half-life of 7 days after Tmax = Day 7, a BLQ on Day 60 (after Tmax). The Day 4 sample is
# drawn 2 hours late (actual vs nominal time).
S1_QPCR = [  # (nominal day, PCELTM, actual offset hours, PCSTRESC, PCSTRESN)
    (0, "PT0H", -0.5, "BLQ", np.nan), (1, "P1D", 0, "BLQ", np.nan), (4, "P4D", 2, "100", 100.0),
    (7, "P7D", 0, "1000", 1000.0), (14, "P14D", 0, "500", 500.0), (21, "P21D", 0, "250", 250.0),
    (28, "P28D", 0, "125", 125.0), (60, "P60D", 0, "<LLOQ", np.nan)]


def _rec(**values):
    return values


def _pc():
    rows = []
    for day, eltm, late, c, n in S1_QPCR:
        rows.append(_rec(USUBJID=S1, PCTESTCD="CARTGENE", PCTEST="CD19-CAR-mbIL15 Transgene", PCMETHOD=QPCR,
                         PCSTRESC=c, PCSTRESN=n, PCSTRESU="DNA copies/ug", PCLLOQ=50.0,
                         PCDTC=_at(day, late), PCELTM=eltm, VISITDY=day + 1.0, PCTPT=f"DAY {day}",
                         PCTPTNUM=float(day)))
    # S1 flow: one sample only
    rows.append(_rec(USUBJID=S1, PCTESTCD="CARDNT", PCTEST="CD19-CAR+ Double-Negative T Cells", PCMETHOD=FLOW,
                     PCSTRESC="4.2", PCSTRESN=4.2, PCSTRESU="10^6/L", PCLLOQ=0.5, PCDTC=_at(7), PCELTM="P7D",
                     VISITDY=8.0, PCTPT="DAY 7", PCTPTNUM=7.0))
    # S2 qPCR: every sample BLQ, no PCELTM (nominal time from VISITDY)
    for day in (1, 7, 14):
        rows.append(_rec(USUBJID=S2, PCTESTCD="CARTGENE", PCTEST="CD19-CAR-mbIL15 Transgene", PCMETHOD=QPCR,
                         PCSTRESC="BLQ", PCSTRESN=np.nan, PCSTRESU="DNA copies/ug", PCLLOQ=50.0,
                         PCDTC=_at(day), PCELTM="", VISITDY=day + 1.0, PCTPT=f"DAY {day}", PCTPTNUM=float(day)))
    pc = pd.DataFrame(rows).assign(STUDYID="RS001", DOMAIN="PC", PCSPEC="BLOOD", PCSTAT="",
                                   PCTPTREF="RS001 INFUSION")
    pc["PCSEQ"] = pc.groupby("USUBJID").cumcount() + 1.0
    return pc


def _frames(tmp_path, pc=None):
    folder = tmp_path / "sdtm"
    folder.mkdir()
    pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "DM", "USUBJID": [S1, S2, S3]}).to_parquet(folder / "dm.parquet")
    (pc if pc is not None else _pc()).to_parquet(folder / "pc.parquet")
    return CutoffView(read_sdtm(folder), CUT)


@pytest.fixture
def built(tmp_path):
    study = load_study("RS001")
    adpc = build_adpc(_frames(tmp_path), study, _adsl())
    adpp = build_adpp(_adsl(), adpc, study)
    return (conform(adpc, load_spec("ADPC", "RS001")), conform(adpp, load_spec("ADPP", "RS001")))


def _s1_qpcr(adpc):
    return adpc[(adpc.USUBJID == S1) & (adpc.PARAMCD == "CARTGENE")].set_index("NFRLT")


def test_iso_durations_to_days():
    got = compute_duration_days(pd.Series(["PT0H", "P1D", "PT36H", "P1DT12H", "-PT12H", "P2W", "", "DAY 1"]))
    assert got.iloc[:6].tolist() == [0.0, 1.0, 1.5, 1.5, -0.5, 14.0] and got.iloc[6:].isna().all()


def test_actual_and_nominal_times(built):
    adpc, _ = built
    s1 = _s1_qpcr(adpc)
    assert s1.loc[4.0, "AFRLT"] == pytest.approx(4 + 2 / 24) and s1.loc[4.0, "ARRLT"] == pytest.approx(98.0)
    assert s1.loc[4.0, "NRRLT"] == 96.0 and (s1.FRLTU == "DAYS").all() and (s1.RRLTU == "HOURS").all()
    assert s1.loc[0.0, "AFRLT"] == pytest.approx(-0.5 / 24)     # pre-infusion: negative actual time
    s2 = adpc[adpc.USUBJID == S2]
    assert s2.NFRLT.tolist() == [1.0, 7.0, 14.0]                   # no PCELTM: VISITDY - 1
    assert (adpc.PCRFTDTM.dropna() == INF).all() and (adpc.SRCDOM == "PC").all()
    assert adpc.SRCSEQ.notna().all() and adpc.groupby("USUBJID").ASEQ.apply(lambda a: a.is_monotonic_increasing).all()


def test_blq_flags_before_and_after_tmax(built):
    adpc, _ = built
    s1 = _s1_qpcr(adpc)
    assert s1.BLQFL.tolist() == ["Y", "Y", "", "", "", "", "", "Y"]
    assert s1.loc[1.0, "ANL01FL"] == "Y" and np.isnan(s1.loc[1.0, "AVAL"])     # BLQ before Tmax: used (as 0)
    assert s1.loc[60.0, "ANL01FL"] == "" and s1.loc[60.0, "NCAEXCL"].startswith("BLQ after Tmax")
    assert s1.loc[0.0, "ANL01FL"] == "" and s1.loc[0.0, "NCAEXCL"].startswith("pre-infusion")
    assert (s1.loc[[4.0, 7.0, 14.0, 21.0, 28.0], "ANL01FL"] == "Y").all()
    assert s1.loc[60.0, "AVALC"] == "BLQ"
    assert (adpc.loc[adpc.USUBJID == S2, "NCAEXCL"] == "BLQ in a profile with no quantifiable level").all()


def test_adpp_matches_the_profile_computed_by_hand(built):
    _, adpp = built
    p = adpp[adpp.USUBJID == S1].set_index("PARAMCD")
    # by hand: level 0 at time 0, Day 1 BLQ = 0, linear up to Tmax, log trapezoid after it
    t4 = 4 + 2 / 24
    up = (t4 - 1) * 100 / 2 + (7 - t4) * (100 + 1000) / 2
    down = sum(7 * (c1 - c2) / math.log(c1 / c2) for c1, c2 in ((1000, 500), (500, 250), (250, 125)))
    assert p.loc["CMAXQ", "AVAL"] == 1000 and p.loc["TMAXQ", "AVAL"] == 7
    assert p.loc["AUCLSTQ", "AVAL"] == pytest.approx(up + down, rel=1e-12)
    assert p.loc["AUC28DQ", "AVAL"] == pytest.approx(up + down, rel=1e-12)
    assert p.loc["LAMZQ", "AVAL"] == pytest.approx(LN2 / 7, rel=1e-12)
    assert p.loc["LAMZHLQ", "AVAL"] == pytest.approx(7, rel=1e-12)
    assert p.loc["LAMZNPTQ", "AVAL"] == 3 and p.loc["R2ADJQ", "AVAL"] == pytest.approx(1.0)
    assert (p.loc["LAMZLLQ", "AVAL"], p.loc["LAMZULQ", "AVAL"]) == (14, 28)
    assert p.loc["LAMZSPNQ", "AVAL"] == pytest.approx(2.0)
    assert p.loc["THLFOBSQ", "AVAL"] == pytest.approx(7.0)         # Day 14 = Cmax/2 exactly
    assert p.loc["CMAXQ", "PARAM"] == "Cmax, qPCR (DNA copies/ug)" and p.loc["CMAXQ", "NCACD"] == "CMAX"
    assert p.loc["AUCLSTQ", "AVALU"] == "day*DNA copies/ug" and p.loc["LAMZQ", "AVALU"] == "1/day"
    assert (p.loc[p.AVAL.notna(), "PPREASND"] == "").all()


def test_one_sample_profile_has_missing_parameters_with_reasons(built):
    _, adpp = built
    f = adpp[(adpp.USUBJID == S1) & (adpp.PARCAT1 == "FLOW")].set_index("PARAMCD")
    assert f.loc["CMAXF", "AVAL"] == 4.2 and f.loc["TMAXF", "AVAL"] == 7
    for code in ("AUCLSTF", "AUC28DF", "LAMZF", "LAMZHLF", "THLFOBSF"):
        assert np.isnan(f.loc[code, "AVAL"]) and f.loc[code, "PPREASND"]
    assert "at least 2" in f.loc["AUCLSTF", "PPREASND"] and "lambda_z" in f.loc["LAMZF", "PPREASND"]


def test_all_blq_profile_and_uninfused_subject(built):
    _, adpp = built
    s2 = adpp[adpp.USUBJID == S2]
    assert len(s2) == 14 and s2.AVAL.isna().all()
    assert (s2.PPREASND == "no quantifiable sample (all BLQ or missing)").all()
    assert S3 not in set(adpp.USUBJID)
    params = adpp.drop_duplicates(["PARAMCD", "PARAM"])
    assert params.PARAMCD.is_unique and params.PARAM.is_unique and params.PARAMCD.str.len().max() <= 8


def test_pc_subject_not_in_adsl_is_an_error(tmp_path):
    pc = _pc()
    pc.loc[0, "USUBJID"] = "RS001-999-999"
    with pytest.raises(RuleError, match="not in DM/ADSL"):
        build_adpc(_frames(tmp_path, pc), load_study("RS001"), _adsl())


def test_unit_not_the_one_param_states_is_an_error(tmp_path):
    pc = _pc()
    pc.loc[2, "PCSTRESU"] = "copies/ug"
    with pytest.raises(RuleError, match="ADPC states"):
        build_adpc(_frames(tmp_path, pc), load_study("RS001"), _adsl())


def test_no_pc_gives_no_adpc(tmp_path):
    folder = tmp_path / "sdtm"
    folder.mkdir()
    pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "DM", "USUBJID": [S1]}).to_parquet(folder / "dm.parquet")
    frames = CutoffView(read_sdtm(folder), CUT)
    assert build_adpc(frames, load_study("RS001"), _adsl()) is None
    assert build_adpp(_adsl(), None, load_study("RS001")) is None


# --- the sample SDTM, built by the pipeline --------------------------------------------------

@pytest.fixture(scope="module")
def sample(sample_adam):
    return sample_adam


def test_sample_rs001_adpc_adpp_adex_written(sample):
    run = sample["RS001"]
    for name in ("ADEX", "ADPC", "ADPP"):
        assert run.written[name]["xpt"].is_file() and run.written[name]["parquet"].is_file()
    adsl, adpc, adpp = run.datasets["ADSL"], run.datasets["ADPC"], run.datasets["ADPP"]
    # every infused subject with a post-infusion result of a method has its Cmax for the method
    pk = adpc[(adpc.AFRLT >= 0) & ((adpc.BLQFL == "Y") | adpc.AVAL.notna())]
    assert set(pk.USUBJID) <= set(adsl.loc[adsl.SAFFL == "Y", "USUBJID"])
    for method, code in (("QPCR", "CMAXQ"), ("FLOW", "CMAXF")):
        want = set(pk.loc[pk.PARCAT1 == method, "USUBJID"])
        got = adpp[adpp.PARAMCD == code]
        assert want and set(got.USUBJID) == want
        assert got.AVAL.notna().sum() + (got.PPREASND != "").sum() == len(got)
    adex = run.datasets["ADEX"]
    flag = adex[adex.PARAMCD == "RS1ASGFL"]
    assert set(flag.USUBJID) == set(adsl.loc[adsl.SAFFL == "Y", "USUBJID"]) and (flag.AVALC == "Y").all()


def test_sample_glocart_has_adex_but_no_adpc_adpp(sample):
    run = sample["GLOCART"]
    assert "ADEX" in run.datasets and "ADPC" not in run.datasets and "ADPP" not in run.datasets
    adex = run.datasets["ADEX"]
    assert {"GLON", "OBIFL", "AGXN", "CONSN", "CARTDOSA"} <= set(adex.PARAMCD)
