"""ADVS and ADEG from SDTM built by hand (standard SDTMIG 3.4 variables only, no SUPP--): the
baseline rule, change, and every abnormality criterion of vs_eg_abnormal.csv at its boundary."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from adam.adeg import build_adeg
from adam.advs import build_advs
from adam.bds import abnormal_criteria, derive_vars_crit, max_crit
from adam.cutoff import CutoffView
from adam.metadata import load_spec
from adam.read import SdtmInputError, read_sdtm
from adam.write import conform
from clinpipe.config import load_study

CUT = dt.date(2024, 6, 30)
S1, S2 = "RS001-101-001", "RS001-101-002"
VS_TESTS = {"SYSBP": ("Systolic Blood Pressure", "mmHg"), "DIABP": ("Diastolic Blood Pressure", "mmHg"),
            "TEMP": ("Temperature", "C"), "OXYSAT": ("Oxygen Saturation", "%"), "PULSE": ("Pulse Rate", "beats/min")}
EG_TESTS = {"QTCFAG": ("QTcF Interval, Aggregate", "ms"), "INTP": ("Interpretation", "")}


def _adsl():
    return pd.DataFrame({
        "STUDYID": "RS001", "USUBJID": [S1, S2], "SUBJID": ["101-001", "101-002"], "SITEID": "101",
        "TRT01A": "DL1 1x10^6 CAR+ cells/kg", "TRT01AN": 1.0, "SAFFL": "Y",
        "TRTSDT": pd.to_datetime(["2024-01-25", "2024-01-25"]),
        "TRTSDTM": pd.to_datetime(["2024-01-25 10:40", "2024-01-25 10:40"]),
    })


def _dm():
    # S2's first treatment has no time: an untimed ECG on that day counts as pre-dose unless POST
    return pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "DM", "USUBJID": [S1, S2], "SUBJID": ["101-001", "101-002"],
                         "RFXSTDTC": ["2024-01-20T12:00", "2024-01-20"]})


def _findings(domain, tests, rows):
    d = domain
    out = []
    for i, (subj, code, dtc, value, tpt) in enumerate(rows):
        name, unit = tests[code]
        text = value if isinstance(value, str) else f"{value:g}"
        num = np.nan if isinstance(value, str) else float(value)
        out.append({"STUDYID": "RS001", "DOMAIN": d, "USUBJID": subj, f"{d}SEQ": float(i + 1), f"{d}TESTCD": code,
                    f"{d}TEST": name, f"{d}ORRES": text, f"{d}ORRESU": unit, f"{d}STRESC": text,
                    f"{d}STRESN": num, f"{d}STRESU": unit, "VISIT": "DAY X", "VISITNUM": 5.0, f"{d}DTC": dtc,
                    f"{d}TPT": tpt, f"{d}TPTNUM": {"PRE-INFUSION": 1.0, "POST-INFUSION": 2.0}.get(tpt, np.nan)})
    return pd.DataFrame(out)


VS_ROWS = [
    (S1, "SYSBP", "2024-01-05T08:00", 120, ""),               # baseline (screening, before LD start)
    (S1, "SYSBP", "2024-01-25T10:00", 139, "PRE-INFUSION"),   # timed before the infusion: not on treatment
    (S1, "SYSBP", "2024-01-25T12:00", 140, "POST-INFUSION"),
    (S1, "SYSBP", "2024-01-26T08:00", 159, ""),
    (S1, "SYSBP", "2024-01-27T08:00", 160, ""),
    (S1, "SYSBP", "2024-01-28T08:00", 90, ""),
    (S1, "SYSBP", "2024-01-29T08:00", 89, ""),
    (S1, "SYSBP", "2024-03-29T08:00", 89, ""),                # ties the lowest: the earlier one is the worst
    (S1, "DIABP", "2024-01-05T08:00", 80, ""),
    (S1, "DIABP", "2024-01-26T08:00", 89, ""),
    (S1, "DIABP", "2024-01-27T08:00", 90, ""),
    (S1, "DIABP", "2024-01-28T08:00", 99, ""),
    (S1, "DIABP", "2024-01-29T08:00", 100, ""),
    (S1, "TEMP", "2024-01-05T08:00", 36.8, ""),
    (S1, "TEMP", "2024-01-26T08:00", 37.9, ""),
    (S1, "TEMP", "2024-01-26T12:00", 38.0, ""),
    (S1, "TEMP", "2024-01-27T08:00", 39.0, ""),
    (S1, "TEMP", "2024-01-27T12:00", 39.1, ""),
    (S1, "TEMP", "2024-01-28T08:00", 40.0, ""),
    (S1, "TEMP", "2024-01-28T12:00", 40.1, ""),
    (S1, "OXYSAT", "2024-01-26T08:00", 88, ""),
    (S1, "OXYSAT", "2024-01-27T08:00", 87, ""),
    (S1, "PULSE", "2024-01-26T08:00", 130, ""),
]

EG_ROWS = [
    (S1, "QTCFAG", "2024-01-05", 400, ""),                 # baseline
    (S1, "QTCFAG", "2024-01-25", 450, "PRE-INFUSION"),     # untimed on Day 0, pre-infusion: not on treatment
    (S1, "QTCFAG", "2024-01-25", 451, "POST-INFUSION"),
    (S1, "QTCFAG", "2024-01-26", 480, ""),
    (S1, "QTCFAG", "2024-01-27", 481, ""),
    (S1, "QTCFAG", "2024-01-28", 500, ""),
    (S1, "QTCFAG", "2024-01-29", 501, ""),
    (S1, "QTCFAG", "2024-02-01", 430, ""),                 # +30: not > 30
    (S1, "QTCFAG", "2024-02-02", 431, ""),                 # +31
    (S1, "QTCFAG", "2024-02-03", 460, ""),                 # +60: not > 60
    (S1, "INTP", "2024-01-05", "NORMAL", ""),
    (S1, "INTP", "2024-01-26", "ABNORMAL", ""),
    (S2, "QTCFAG", "2024-01-10", 410, ""),
    (S2, "QTCFAG", "2024-01-20", 420, ""),                 # untimed on the untimed first-treatment day: baseline
    (S2, "QTCFAG", "2024-01-20", 440, "POST-INFUSION"),    # ... but not a post-dose one
    (S2, "QTCFAG", "2024-01-26", 425, ""),
]


def _frames(tmp_path, vs=None, eg=None, dm=None):
    folder = tmp_path / "sdtm"
    folder.mkdir(parents=True, exist_ok=True)
    (dm if dm is not None else _dm()).to_parquet(folder / "dm.parquet")
    (vs if vs is not None else _findings("VS", VS_TESTS, VS_ROWS)).to_parquet(folder / "vs.parquet")
    (eg if eg is not None else _findings("EG", EG_TESTS, EG_ROWS)).to_parquet(folder / "eg.parquet")
    return CutoffView(read_sdtm(folder), CUT)


@pytest.fixture
def advs(tmp_path):
    return conform(build_advs(_frames(tmp_path), load_study("RS001"), _adsl()), load_spec("ADVS", "RS001"))


@pytest.fixture
def adeg(tmp_path):
    return conform(build_adeg(_frames(tmp_path), load_study("RS001"), _adsl()), load_spec("ADEG", "RS001"))


def _at(df, subj, code, dtc, tpt=None):
    rows = df[(df.USUBJID == subj) & (df.PARAMCD == code) & (df.ADT == pd.Timestamp(dtc[:10]))]
    if "T" in dtc:
        rows = rows[rows.ADTM == pd.Timestamp(dtc)]
    if tpt is not None:
        rows = rows[rows.ATPT == tpt]
    assert len(rows) == 1, (subj, code, dtc, tpt)
    return rows.iloc[0]


def test_advs_shape_baseline_and_change(advs):
    assert list(advs.columns) == load_spec("ADVS", "RS001").names
    assert set(advs.loc[advs.PARAMCD == "SYSBP", "PARAM"]) == {"Systolic Blood Pressure (mmHg)"}
    bl = advs[advs.ABLFL == "Y"]
    assert not bl.duplicated(["USUBJID", "PARAMCD"]).any()
    assert _at(advs, S1, "SYSBP", "2024-01-05T08:00").ABLFL == "Y"
    r = _at(advs, S1, "SYSBP", "2024-01-26T08:00")
    assert (r.BASE, r.CHG, r.PCHG) == (120, 39, pytest.approx(32.5))
    # no value before the first treatment: no baseline
    assert (advs.loc[advs.PARAMCD == "OXYSAT", "ABLFL"] == "").all()


def test_advs_on_treatment_timed_day0(advs):
    assert _at(advs, S1, "SYSBP", "2024-01-25T10:00").ONTRTFL == ""
    assert _at(advs, S1, "SYSBP", "2024-01-25T12:00").ONTRTFL == "Y"
    assert _at(advs, S1, "SYSBP", "2024-03-29T08:00").PRIMWFL == ""


@pytest.mark.parametrize("code,dtc,y,flag", [
    ("SYSBP", "2024-01-25T10:00", 1, "N"), ("SYSBP", "2024-01-25T12:00", 1, "Y"),    # 139 / 140
    ("SYSBP", "2024-01-26T08:00", 2, "N"), ("SYSBP", "2024-01-27T08:00", 2, "Y"),    # 159 / 160
    ("SYSBP", "2024-01-28T08:00", 3, "N"), ("SYSBP", "2024-01-29T08:00", 3, "Y"),    # 90 / 89
    ("DIABP", "2024-01-26T08:00", 1, "N"), ("DIABP", "2024-01-27T08:00", 1, "Y"),    # 89 / 90
    ("DIABP", "2024-01-28T08:00", 2, "N"), ("DIABP", "2024-01-29T08:00", 2, "Y"),    # 99 / 100
    ("TEMP", "2024-01-26T08:00", 1, "N"), ("TEMP", "2024-01-26T12:00", 1, "Y"),      # 37.9 / 38.0
    ("TEMP", "2024-01-27T08:00", 2, "N"), ("TEMP", "2024-01-27T12:00", 2, "Y"),      # 39.0 / 39.1
    ("TEMP", "2024-01-28T08:00", 3, "N"), ("TEMP", "2024-01-28T12:00", 3, "Y"),      # 40.0 / 40.1
    ("OXYSAT", "2024-01-26T08:00", 1, "N"), ("OXYSAT", "2024-01-27T08:00", 1, "Y"),  # 88 / 87
])
def test_vs_criteria_boundaries(advs, code, dtc, y, flag):
    r = _at(advs, S1, code, dtc)
    assert r[f"CRIT{y}FL"] == flag and r[f"CRIT{y}"] != ""


def test_vs_parameter_without_criteria_and_criterion_text(advs):
    pulse = _at(advs, S1, "PULSE", "2024-01-26T08:00")
    assert (pulse.CRIT1, pulse.CRIT1FL) == ("", "")
    assert set(advs.loc[advs.PARAMCD == "TEMP", "CRIT1"]) == {"Temperature >= 38.0 C"}
    assert set(advs.loc[advs.PARAMCD == "DIABP", "CRIT3"]) == {""}    # DIABP has two criteria


def test_vs_worst_flags(advs):
    assert _at(advs, S1, "SYSBP", "2024-01-27T08:00").WORSTHFL == "Y"
    assert _at(advs, S1, "SYSBP", "2024-01-29T08:00").WORSTLFL == "Y"    # 89 twice: the earlier
    assert _at(advs, S1, "SYSBP", "2024-03-29T08:00").WORSTLFL == ""
    for flag in ("WORSTLFL", "WORSTHFL"):
        assert not advs[advs[flag] == "Y"].duplicated(["USUBJID", "PARAMCD"]).any()


def test_criterion_not_judged_in_another_unit():
    crit = abnormal_criteria("VS")
    df = pd.DataFrame({"PARAMCD": ["TEMP", "TEMP"], "PARAM": ["Temperature (F)", "Temperature (C)"],
                       "AVAL": [101.0, 38.5], "CHG": [np.nan, np.nan]})
    out = derive_vars_crit(df, crit, max_crit("VS"))
    assert list(out.CRIT1FL) == ["", "Y"]


def test_every_criterion_cites_a_source():
    for domain in ("VS", "EG"):
        for c in abnormal_criteria(domain):
            assert len(c["source"]) > 20 and c["unit"]


@pytest.mark.parametrize("dtc,tpt,y,flag", [
    ("2024-01-25", "PRE-INFUSION", 1, "N"), ("2024-01-25", "POST-INFUSION", 1, "Y"),   # 450 / 451
    ("2024-01-26", "", 2, "N"), ("2024-01-27", "", 2, "Y"),                            # 480 / 481
    ("2024-01-28", "", 3, "N"), ("2024-01-29", "", 3, "Y"),                            # 500 / 501
    ("2024-02-01", "", 4, "N"), ("2024-02-02", "", 4, "Y"),                            # +30 / +31
    ("2024-02-03", "", 5, "N"), ("2024-01-29", "", 5, "Y"),                            # +60 / +101
])
def test_eg_qtcf_criteria_boundaries(adeg, dtc, tpt, y, flag):
    assert _at(adeg, S1, "QTCFAG", dtc, tpt)[f"CRIT{y}FL"] == flag


def test_eg_change_criteria_need_a_baseline_change(adeg):
    bl = _at(adeg, S1, "QTCFAG", "2024-01-05")
    assert bl.ABLFL == "Y" and np.isnan(bl.CHG) and bl.CRIT4FL == "" and bl.CRIT1FL == "N"


def test_eg_untimed_day0_uses_the_time_point(adeg):
    assert _at(adeg, S1, "QTCFAG", "2024-01-25", "PRE-INFUSION").ONTRTFL == ""
    assert _at(adeg, S1, "QTCFAG", "2024-01-25", "POST-INFUSION").ONTRTFL == "Y"
    # S2's first treatment is untimed: the untimed ECG that day is the baseline, the post-dose one is not
    assert _at(adeg, S2, "QTCFAG", "2024-01-20", "").ABLFL == "Y"
    assert _at(adeg, S2, "QTCFAG", "2024-01-20", "POST-INFUSION").ABLFL == ""
    assert _at(adeg, S2, "QTCFAG", "2024-01-26").CHG == 5


def test_eg_text_results(adeg):
    r = _at(adeg, S1, "INTP", "2024-01-26")
    assert (r.AVALC, r.BASEC, r.PARAM, r.SRCVAR) == ("ABNORMAL", "NORMAL", "Interpretation", "EGSTRESC")
    assert np.isnan(r.AVAL)


def test_vs_without_unit_and_unknown_subject_are_errors(tmp_path):
    vs = _findings("VS", VS_TESTS, VS_ROWS)
    vs.loc[3, "VSSTRESU"] = ""
    with pytest.raises(SdtmInputError, match="VSSEQ 4"):
        build_advs(_frames(tmp_path, vs=vs), load_study("RS001"), _adsl())
    eg = _findings("EG", EG_TESTS, EG_ROWS)
    eg.loc[0, "USUBJID"] = "RS001-999-001"
    with pytest.raises(SdtmInputError, match="RS001-999-001"):
        build_adeg(_frames(tmp_path / "b", eg=eg), load_study("RS001"), _adsl())
