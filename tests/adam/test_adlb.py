"""ADLB from an SDTM folder built by hand (standard SDTMIG 3.4 variables only, no SUPP--), one
case per derivation and boundary; then ADLB/ADVS/ADEG on the sample SDTM of both studies."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from adam.adlb import build_adlb
from adam.bds import derive_var_extreme_flag, derive_var_pchg
from adam.cutoff import CutoffView
from adam.metadata import load_spec
from adam.read import SdtmInputError, read_sdtm
from adam.write import conform, write_adam
from clinpipe.config import load_study

CUT = dt.date(2024, 6, 30)
S1, S2, S3 = "RS001-101-001", "RS001-101-002", "RS001-101-003"


def _adsl():
    # S1/S2 treated (infusion 2024-01-25 10:40, lymphodepletion from 2024-01-20 12:00 in DM);
    # S3 a screen failure (no treatment, no baseline reference)
    return pd.DataFrame({
        "STUDYID": "RS001", "USUBJID": [S1, S2, S3], "SUBJID": ["101-001", "101-002", "101-003"],
        "SITEID": "101", "TRT01A": ["DL1 1x10^6 CAR+ cells/kg", "DL1 1x10^6 CAR+ cells/kg", ""],
        "TRT01AN": [1.0, 1.0, np.nan], "SAFFL": ["Y", "Y", "N"],
        "TRTSDT": pd.to_datetime(["2024-01-25", "2024-01-25", None]),
        "TRTSDTM": pd.to_datetime(["2024-01-25 10:40", "2024-01-25 10:40", None]),
    })


def _dm():
    return pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "DM", "USUBJID": [S1, S2, S3],
                         "SUBJID": ["101-001", "101-002", "101-003"],
                         "RFXSTDTC": ["2024-01-20T12:00", "2024-01-20T12:00", ""]})


TESTS = {"NEUT": ("Neutrophils", "10^9/L", 1.8, 7.5, "HEMATOLOGY"), "CRP": ("C Reactive Protein", "mg/L", np.nan, 5.0,
         "INFLAMMATION MARKERS"), "ALB": ("Albumin", "g/L", 35.0, 50.0, "CHEMISTRY"),
         "PLAT": ("Platelets", "10^9/L", 150.0, 400.0, "HEMATOLOGY"), "BLASTCE": ("Blasts/Total Cells", "%", np.nan,
         np.nan, "BONE MARROW")}


def _lb_rows():
    # (subject, test, LBDTC, LBSTRESN, LBSTRESC override, VISIT)
    return [
        (S1, "NEUT", "2024-01-05T08:00", 4.0, None, "SCREENING"),
        (S1, "NEUT", "2024-01-20T07:00", 3.0, None, "DAY -5"),        # the baseline: last before LD start
        (S1, "NEUT", "2024-01-20T13:00", 2.9, None, "UNSCHEDULED 2.01"),  # same day, after LD start
        (S1, "NEUT", "2024-01-25T09:00", 0.4, None, "DAY 0"),         # pre-infusion: not on treatment
        (S1, "NEUT", "2024-01-26T08:00", 0.4, None, "DAY 1"),         # grade 4
        (S1, "NEUT", "2024-01-28T08:00", 0.3, None, "DAY 3"),         # grade 4, lower: the worst
        (S1, "NEUT", "2024-03-01T08:00", 0.8, None, "MONTH 2"),       # grade 3, after Day 28
        (S1, "NEUT", "2024-07-05T08:00", 5.0, None, "MONTH 6"),       # after the cut-off
        (S1, "CRP", "2024-01-20T07:00", np.nan, "<5", "DAY -5"),
        (S1, "CRP", "2024-01-26T08:00", 20.0, None, "DAY 1"),
        (S1, "ALB", "2024-01-05T08:00", 40.0, None, "SCREENING"),
        (S1, "ALB", "2024-01-20T07:00", np.nan, "", "DAY -5"),        # not done: baseline stays at screening
        (S1, "ALB", "2024-01-26T08:00", 29.0, None, "DAY 1"),       # < 30 g/L: grade 2
        (S2, "PLAT", "2024-01-26T08:00", 40.0, None, "DAY 1"),        # no pre-dose value: no baseline
        (S2, "PLAT", "2024-01-27T08:00", 40.0, None, "DAY 3"),        # a tie with the Day 1 value
        (S2, "BLASTCE", "2024-01-19T08:00", 0.0, None, "SCREENING"),  # BASE 0
        (S2, "BLASTCE", "2024-02-22T08:00", 2.0, None, "DAY 28"),
        (S3, "NEUT", "2024-01-10T08:00", 3.5, None, "SCREENING"),
    ]


def _lb(rows=None):
    rows = rows or _lb_rows()
    out = []
    for i, (subj, code, dtc, value, text, visit) in enumerate(rows):
        name, unit, lo, hi, cat = TESTS[code]
        stresc = text if text is not None else f"{value:g}"
        out.append({"STUDYID": "RS001", "DOMAIN": "LB", "USUBJID": subj, "LBSEQ": float(i + 1), "LBTESTCD": code,
                    "LBTEST": name, "LBCAT": cat, "LBORRES": stresc, "LBORRESU": unit, "LBSTRESC": stresc,
                    "LBSTRESN": value, "LBSTRESU": unit if stresc else "", "LBSTNRLO": lo, "LBSTNRHI": hi,
                    "LBSTAT": "" if stresc else "NOT DONE", "VISIT": visit, "VISITNUM": float(i % 7 + 1),
                    "LBDTC": dtc})
    return pd.DataFrame(out)


def _frames(tmp_path, lb=None, dm=None):
    folder = tmp_path / "sdtm"
    folder.mkdir(exist_ok=True)
    (dm if dm is not None else _dm()).to_parquet(folder / "dm.parquet")
    (lb if lb is not None else _lb()).to_parquet(folder / "lb.parquet")
    return CutoffView(read_sdtm(folder), CUT)


def _build(frames):
    # as written: the spec's shape, Char '' for missing
    return conform(build_adlb(frames, load_study("RS001"), _adsl()), load_spec("ADLB", "RS001"))


@pytest.fixture
def adlb(tmp_path):
    return _build(_frames(tmp_path))


def _rec(adlb, subj, code, dtc):
    day = pd.Timestamp(dtc[:10])
    rows = adlb[(adlb.USUBJID == subj) & (adlb.PARAMCD == code) & (adlb.ADT == day)]
    if "T" in dtc:
        rows = rows[rows.ADTM == pd.Timestamp(dtc)]
    assert len(rows) == 1, (subj, code, dtc)
    return rows.iloc[0]


def test_records_params_and_spec(adlb, tmp_path):
    # one record per result as of the cut-off; the spec's variables in its order; writes as XPT/parquet
    assert len(adlb) == len(_lb_rows()) - 1
    assert list(adlb.columns) == load_spec("ADLB", "RS001").names
    assert set(adlb.loc[adlb.PARAMCD == "NEUT", "PARAM"]) == {"Neutrophils (10^9/L)"}
    assert adlb.groupby("PARAMCD").PARAM.nunique().max() == 1
    r = _rec(adlb, S1, "NEUT", "2024-01-26T08:00")
    assert (r.SRCDOM, r.SRCVAR, r.TRTA, r.SAFFL) == ("LB", "LBSTRESN", "DL1 1x10^6 CAR+ cells/kg", "Y")
    assert list(adlb[adlb.USUBJID == S1].ASEQ) == list(range(1, (adlb.USUBJID == S1).sum() + 1))
    write_adam(adlb, load_spec("ADLB", "RS001"), tmp_path / "out")


def test_ady_has_no_day_zero(adlb):
    assert _rec(adlb, S1, "NEUT", "2024-01-25T09:00").ADY == 1
    assert _rec(adlb, S1, "NEUT", "2024-01-20T07:00").ADY == -5
    assert _rec(adlb, S1, "NEUT", "2024-01-26T08:00").ADY == 2


def test_baseline_is_last_value_before_first_study_treatment(adlb):
    bl = adlb[adlb.ABLFL == "Y"]
    assert not bl.duplicated(["USUBJID", "PARAMCD"]).any()
    # Day -5 07:00 is before the lymphodepletion start at 12:00; the 13:00 sample is after it
    assert _rec(adlb, S1, "NEUT", "2024-01-20T07:00").ABLFL == "Y"
    assert _rec(adlb, S1, "NEUT", "2024-01-20T13:00").ABLFL == ""
    assert set(adlb.loc[(adlb.USUBJID == S1) & (adlb.PARAMCD == "NEUT"), "BASE"]) == {3.0}
    # a not-done Day -5 albumin: the last non-missing value (screening) is the baseline
    assert _rec(adlb, S1, "ALB", "2024-01-05T08:00").ABLFL == "Y"
    # a text value is a value: CRP '<5' is the baseline, BASEC carries it
    crp = _rec(adlb, S1, "CRP", "2024-01-26T08:00")
    assert (crp.BASEC, np.isnan(crp.BASE), np.isnan(crp.CHG)) == ("<5", True, True)


def test_no_baseline_when_no_value_before_treatment(adlb):
    plat = adlb[(adlb.USUBJID == S2) & (adlb.PARAMCD == "PLAT")]
    assert (plat.ABLFL == "").all() and plat.BASE.isna().all() and plat.CHG.isna().all()
    # an untreated subject has no reference, so no baseline
    assert (adlb.loc[adlb.USUBJID == S3, "ABLFL"] == "").all()


def test_chg_pchg_and_base_zero(adlb):
    r = _rec(adlb, S1, "NEUT", "2024-01-26T08:00")
    assert r.CHG == pytest.approx(-2.6) and r.PCHG == pytest.approx(-260 / 3)
    assert np.isnan(_rec(adlb, S1, "NEUT", "2024-01-20T07:00").CHG)   # not on the baseline record
    blast = _rec(adlb, S2, "BLASTCE", "2024-02-22T08:00")
    assert blast.BASE == 0 and blast.CHG == 2 and np.isnan(blast.PCHG)
    assert derive_var_pchg(pd.DataFrame({"CHG": [1.0], "BASE": [0.0]})).PCHG.isna().all()


def test_ranges_and_ctcae_grades(adlb):
    bl = _rec(adlb, S1, "NEUT", "2024-01-20T07:00")
    assert (bl.ANRIND, bl.ATOXGRL, bl.ATOXDSCL) == ("NORMAL", "0", "Neutrophil count decreased")
    d1 = _rec(adlb, S1, "NEUT", "2024-01-26T08:00")
    assert (d1.ANRIND, d1.BNRIND, d1.ATOXGRL, d1.ATOXGRLN, d1.BTOXGRL, d1.ATOXGR) == ("LOW", "NORMAL", "4", 4, "0", "-4")
    assert _rec(adlb, S1, "NEUT", "2024-03-01T08:00").ATOXGRL == "3"
    # CTCAE grades neutrophils low only; CRP has no criterion at all: no grade, never a wrong one
    assert d1.ATOXDSCH == "" and d1.ATOXGRH == ""
    crp = adlb[adlb.PARAMCD == "CRP"]
    assert (crp.ATOXGRL == "").all() and (crp.ATOXGRH == "").all() and crp.ATOXGRLN.isna().all()
    assert _rec(adlb, S1, "ALB", "2024-01-26T08:00").ATOXGRL == "2"
    assert _rec(adlb, S1, "CRP", "2024-01-26T08:00").ANRIND == "HIGH"


def test_on_treatment_window_and_shift(adlb):
    assert _rec(adlb, S1, "NEUT", "2024-01-25T09:00").ONTRTFL == ""     # Day 0 before the 10:40 infusion
    d1 = _rec(adlb, S1, "NEUT", "2024-01-26T08:00")
    assert (d1.ONTRTFL, d1.PRIMWFL, d1.SHIFT1, d1.SHIFT3) == ("Y", "Y", "0 to 4", "NORMAL to LOW")
    m2 = _rec(adlb, S1, "NEUT", "2024-03-01T08:00")
    assert (m2.ONTRTFL, m2.PRIMWFL, m2.SHIFT1) == ("Y", "", "0 to 3")
    assert _rec(adlb, S1, "NEUT", "2024-01-20T07:00").SHIFT1 == ""       # shifts on on-treatment records only
    assert _rec(adlb, S2, "PLAT", "2024-01-26T08:00").SHIFT1 == "MISSING to 3"


def test_worst_flags_one_per_subject_and_parameter(adlb):
    for flag in ("WORSTLFL", "WORSTHFL"):
        worst = adlb[adlb[flag] == "Y"]
        assert not worst.duplicated(["USUBJID", "PARAMCD"]).any()
        assert (worst.ONTRTFL == "Y").all()
    # two grade-4 values: the lower one is the worst low
    assert _rec(adlb, S1, "NEUT", "2024-01-28T08:00").WORSTLFL == "Y"
    assert _rec(adlb, S1, "NEUT", "2024-01-26T08:00").WORSTLFL == ""
    # a full tie (grade and value): the earliest
    assert _rec(adlb, S2, "PLAT", "2024-01-26T08:00").WORSTLFL == "Y"
    assert _rec(adlb, S2, "PLAT", "2024-01-27T08:00").WORSTLFL == ""


def test_extreme_flag_missing_sorts_last():
    df = pd.DataFrame({"USUBJID": ["A"] * 3, "PARAMCD": "X", "G": [np.nan, 1.0, 1.0], "AVAL": [9.0, 2.0, 3.0]})
    out = derive_var_extreme_flag(df, "F", pd.Series(True, index=df.index), [("G", False), ("AVAL", False)])
    assert list(out.F) == ["", "", "Y"]


def test_subject_not_in_dm_is_an_error(tmp_path):
    lb = _lb()
    lb.loc[0, "USUBJID"] = "RS001-999-999"
    with pytest.raises(SdtmInputError, match="RS001-999-999") as exc:
        build_adlb(_frames(tmp_path, lb), load_study("RS001"), _adsl())
    assert "not in DM" in exc.value.message and "add the subject to DM" in exc.value.message


def test_lab_without_unit_is_an_error_naming_the_record(tmp_path):
    lb = _lb()
    lb.loc[4, "LBSTRESU"] = ""
    with pytest.raises(SdtmInputError, match="no standard unit") as exc:
        build_adlb(_frames(tmp_path, lb), load_study("RS001"), _adsl())
    assert f"{S1} LBSEQ 5" in exc.value.message and "LBSTRESU" in exc.value.message


def test_test_with_two_units_is_an_error(tmp_path):
    lb = _lb()
    lb.loc[1, "LBSTRESU"] = "10^3/uL"
    with pytest.raises(SdtmInputError, match="more than one standard unit"):
        build_adlb(_frames(tmp_path, lb), load_study("RS001"), _adsl())


def test_minimal_lb_without_permissible_variables(tmp_path):
    lb = _lb().drop(columns=["LBCAT", "LBSTNRLO", "LBSTNRHI", "VISIT", "VISITNUM", "LBSTAT"])
    adlb = _build(_frames(tmp_path, lb))
    assert len(adlb) == len(_lb_rows()) - 1 and (adlb.ANRIND == "").all()
    # without ranges a criterion needing the LLN cannot be applied: no grade, never grade 0 by default
    assert _rec(adlb, S1, "NEUT", "2024-01-20T07:00").ATOXGRL == ""
    assert _rec(adlb, S1, "NEUT", "2024-01-26T08:00").ATOXGRL == "4"


# --- the sample SDTM, both studies ------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_runs(sample_adam):
    return sample_adam


@pytest.mark.parametrize("study", ["RS001", "GLOCART"])
def test_sample_writes_adlb_advs_adeg(sample_runs, study):
    run = sample_runs[study]
    for name in ("ADLB", "ADVS", "ADEG"):
        assert name in run.written and (run.folder / f"{name.lower()}.xpt").is_file()
        df = run.datasets[name]
        assert len(df) > 0
        assert not df[df.ABLFL == "Y"].duplicated(["USUBJID", "PARAMCD"]).any()
        assert df.groupby("PARAMCD").PARAM.nunique().max() == 1 and df.PARAMCD.str.len().max() <= 8
        assert set(df.USUBJID) <= set(run.datasets["ADSL"].USUBJID)
        assert (df.ADT.dropna() <= pd.Timestamp(run.cutoff)).all()
        for flag in ("WORSTLFL", "WORSTHFL"):
            assert not df[df[flag] == "Y"].duplicated(["USUBJID", "PARAMCD"]).any()
    if getattr(run, "validation", None) is not None:   # the ADaM conformance checks of the run
        errors = run.validation.open("ERROR")
        assert errors[errors.DATASET.isin(["ADLB", "ADVS", "ADEG"])].empty
    adlb = run.datasets["ADLB"]
    assert adlb.ATOXGRL.isin(["", "0", "1", "2", "3", "4"]).all()
    assert (adlb.loc[adlb.PARAMCD.isin(["CRP", "FERRITIN", "INTLK6"]), ["ATOXGRL", "ATOXGRH"]] == "").all().all()
