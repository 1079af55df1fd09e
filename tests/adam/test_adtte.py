"""ADTTE from an SDTM folder built by hand (standard SDTMIG variables only: DM, EX, DS, MH, RS with
RSTESTCD OVRLRESP and RSCAT naming the criterion, CM with CMCAT), and on generator output: the
derived event/censor status and dates agree with what the simulator simulated, and every
disagreement is explained by a censoring rule."""
import datetime as dt

import pandas as pd
import pytest

from adam.adsl import build_adsl
from adam.adtte import build_adtte
from adam.cutoff import CutoffView
from adam.metadata import load_spec
from adam.read import read_sdtm
from clinpipe.config import load_study

CUT = dt.date(2025, 5, 27)
S1, S2, S3 = "RS001-101-001", "RS001-101-002", "RS001-103-001"


def _sdtm(tmp_path):
    """S1 B-NHL: PR Day 28, CR Day 90, new therapy, PD later -> PFS censored (new therapy);
    S2 B-ALL: NR at Day 28 and Month 3 -> EFS treatment failure; S3 B-NHL: CR Day 28, then nothing
    for a year, death -> PFS censored (missed assessments)."""
    folder = tmp_path / "sdtm"
    folder.mkdir()
    subj = [S1, S2, S3]
    arms = ["Escalation RS001 1x10^6 CAR+ cells/kg"] * 2 + ["Expansion RS001 6x10^6 CAR+ cells/kg"]
    pd.DataFrame({
        "STUDYID": "RS001", "DOMAIN": "DM", "USUBJID": subj, "SUBJID": [s[6:] for s in subj],
        "SITEID": ["101", "101", "103"], "COUNTRY": ["CHN", "CHN", "USA"], "AGE": [70.0, 40.0, 64.0], "AGEU": "YEARS",
        "SEX": "F", "RACE": "ASIAN", "ETHNIC": "NOT REPORTED", "ARMCD": ["ESC_DL1", "ESC_DL1", "EXP_DL3"], "ARM": arms,
        "ACTARMCD": ["ESC_DL1", "ESC_DL1", "EXP_DL3"], "ACTARM": arms,
        "RFICDTC": ["2024-01-02", "2024-01-03", "2024-01-04"], "DMDTC": ["2024-01-05", "2024-01-06", "2024-01-07"],
        "DTHDTC": ["", "", "2025-02-10"], "DTHFL": ["", "", "Y"],
    }).to_parquet(folder / "dm.parquet")
    pd.DataFrame({
        "STUDYID": "RS001", "DOMAIN": "EX", "USUBJID": subj, "EXSEQ": 1.0, "EXTRT": "RS001", "EXCAT": "CELL THERAPY",
        "EXSTDTC": "2024-01-25", "EXDOSE": [1e6, 1e6, 6e6], "EXDOSU": "CAR+ cells/kg",
    }).to_parquet(folder / "ex.parquet")
    pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "MH", "USUBJID": subj, "MHSEQ": 1.0,
                  "MHTERM": ["DLBCL", "B-ALL", "DLBCL"], "MHCAT": "PRIMARY DIAGNOSIS",
                  "MHSCAT": ["B-CELL NON-HODGKIN LYMPHOMA", "B-CELL ACUTE LYMPHOBLASTIC LEUKEMIA",
                             "B-CELL NON-HODGKIN LYMPHOMA"], "MHSTDTC": "2020"}).to_parquet(folder / "mh.parquet")
    pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "DS", "USUBJID": [S3], "DSSEQ": [1.0], "DSCAT": "DISPOSITION EVENT",
                  "DSDECOD": ["DEATH"], "DSTERM": ["DEATH"], "DSSTDTC": ["2025-02-10"]}).to_parquet(folder / "ds.parquet")
    rows = [(S1, "2024-02-22", "LUGANO CLASSIFICATION", "PR"), (S1, "2024-04-24", "LUGANO CLASSIFICATION", "CR"),
            (S1, "2024-07-20", "LUGANO CLASSIFICATION", "PD"),
            (S2, "2024-02-22", "NCCN ALL V3.2025", "NR"), (S2, "2024-04-24", "NCCN ALL V3.2025", "NR"),
            (S3, "2024-02-22", "LUGANO CLASSIFICATION", "CR")]
    inf = pd.Timestamp("2024-01-25")
    pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "RS", "USUBJID": [r[0] for r in rows],
                  "RSSEQ": [float(i + 1) for i in range(len(rows))], "RSTESTCD": "OVRLRESP",
                  "RSTEST": "Overall Response", "RSCAT": [r[2] for r in rows], "RSORRES": [r[3] for r in rows],
                  "RSSTRESC": [r[3] for r in rows], "RSEVAL": "INVESTIGATOR", "RSDTC": [r[1] for r in rows],
                  "RSDY": [float((pd.Timestamp(r[1]) - inf).days + 1) for r in rows]}).to_parquet(folder / "rs.parquet")
    pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "CM", "USUBJID": [S1], "CMSEQ": [1.0], "CMTRT": ["R-GemOx"],
                  "CMCAT": ["SUBSEQUENT ANTI-CANCER THERAPY"], "CMSTDTC": ["2024-06"]}).to_parquet(folder / "cm.parquet")
    pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "TS", "TSSEQ": [1.0], "TSPARMCD": ["DCUTDTC"],
                  "TSPARM": ["Data Cutoff Date"], "TSVAL": [CUT.isoformat()]}).to_parquet(folder / "ts.parquet")
    return folder


@pytest.fixture
def adtte(tmp_path):
    study = load_study("RS001")
    frames = CutoffView(read_sdtm(_sdtm(tmp_path)), CUT)
    adsl = build_adsl(frames, study, CUT)
    return build_adtte(frames, study, adsl)


def test_hand_built_sdtm(adtte):
    assert list(adtte.columns) == load_spec("ADTTE", "RS001").names
    assert not adtte.duplicated(["USUBJID", "PARAMCD"]).any() and (adtte.ADT >= adtte.STARTDT).all()
    r = adtte.set_index(["USUBJID", "PARAMCD"])
    # new therapy in June 2024 (partial: the 1st) before the PD of July: censored at the CR of April
    assert (r.loc[(S1, "PFS"), "CNSR"], r.loc[(S1, "PFS"), "ADT"]) == (2, pd.Timestamp("2024-04-24"))
    assert r.loc[(S1, "PFS"), "SRCSEQ"] == 2
    # DOR from the first response (PR, Feb 22)
    assert r.loc[(S1, "DOR"), "STARTDT"] == pd.Timestamp("2024-02-22")
    # no CR/CRi by Month 3: EFS event on Day 0 (AVAL 1); no RFS/DOR record for a non-responder
    e = r.loc[(S2, "EFS")]
    assert (e.CNSR, e.AVAL, e.ADT) == (0, 1, pd.Timestamp("2024-01-25"))
    assert (S2, "RFS") not in r.index and (S2, "DOR") not in r.index
    # death a year after the last assessment (Month 3, 6, 9 missed): censored at Day 28
    p = r.loc[(S3, "PFS")]
    assert (p.CNSR, p.ADT, p.CNSDTDSC) == (3, pd.Timestamp("2024-02-22"), "LAST ADEQUATE ASSESSMENT BEFORE THE MISSED ASSESSMENTS")
    assert (r.loc[(S3, "OS"), "CNSR"], r.loc[(S3, "OS"), "ADT"]) == (0, pd.Timestamp("2025-02-10"))
    # OS from enrolment, alive subjects at the last date known alive
    assert r.loc[(S1, "OS"), "STARTDT"] == pd.Timestamp("2024-01-05") and r.loc[(S1, "OS"), "CNSR"] == 5
    assert set(r.xs("PFS", level=1).index) == {S1, S3}


def test_no_rs_no_adtte(tmp_path):
    folder = _sdtm(tmp_path)
    (folder / "rs.parquet").unlink()
    frames = CutoffView(read_sdtm(folder), CUT)
    study = load_study("RS001")
    assert build_adtte(frames, study, build_adsl(frames, study, CUT)) is None


# --- generator output -----------------------------------------------------------------------------

def _generate(simulated_adam, study, n, seed):
    sim, run, _ = simulated_adam(study, n, seed)
    adtte = run.datasets["ADTTE"]
    truth = pd.DataFrame(sim.truth["subjects"])
    truth["USUBJID"] = f"{study}-" + truth.SUBJECT.astype(str)
    return adtte, run.datasets["ADSL"], truth.set_index("USUBJID")


@pytest.fixture(scope="module")
def generated(simulated_adam):
    return _generate(simulated_adam, "RS001", 36, 7)


@pytest.fixture(scope="module")
def generated_glocart(simulated_adam):
    return _generate(simulated_adam, "GLOCART", 30, 3)


def _d(v):
    return pd.Timestamp(v) if v else pd.NaT


def _check(rec, event, new_tx, cutoff=None):
    """One record against the simulated event date and new-therapy date; the reason when they differ."""
    if cutoff is not None and pd.notna(event) and event > cutoff:
        event = pd.NaT           # simulated beyond the data cut-off: not known at it
    if rec.CNSR == 0:
        assert rec.ADT == event, (rec.USUBJID, rec.PARAMCD, "event date")
    elif rec.CNSR == 2:          # new therapy before the (simulated) event
        assert pd.notna(new_tx) and (pd.isna(event) or new_tx < event) and rec.ADT <= new_tx
    elif rec.CNSR == 3:          # event after >= 2 missed assessments
        assert pd.notna(event) and rec.ADT < event
    else:                        # no event in follow-up as of the cut-off
        assert pd.isna(event), (rec.USUBJID, rec.PARAMCD, "an event was simulated")


def test_generator_pfs_dor_os_agree_with_truth(generated):
    adtte, adsl, truth = generated
    assert not adtte.duplicated(["USUBJID", "PARAMCD"]).any() and (adtte.ADT >= adtte.STARTDT).all()
    assert adtte.PARAMCD.str.len().max() <= 8
    assert (adtte.ADT <= adsl.DCUTDT.max()).all()
    checked = {"PFS": 0, "DOR": 0, "OS": 0, "EFS": 0}
    for rec in adtte.itertuples():        # a test: per-record asserts are fine here
        t = truth.loc[rec.USUBJID]
        death = _d(t.death_date)
        if rec.PARAMCD == "PFS":
            event = min(_d(t.lugano_pd_date), death) if pd.notna(_d(t.lugano_pd_date)) else death
            _check(rec, event, _d(t.new_therapy_date), adsl.DCUTDT.max())
        elif rec.PARAMCD == "DOR":
            # after the response: a Lugano PD before it (an unconfirmed LYRIC flare) is not the end
            # of the response; the progression that follows it is
            prog = _d(t.progression_date)
            if t.disease == "B-NHL" and pd.notna(_d(t.lugano_pd_date)) and _d(t.lugano_pd_date) > rec.STARTDT:
                prog = _d(t.lugano_pd_date)
            event = pd.Series([prog, death]).min()
            _check(rec, event, _d(t.new_therapy_date), adsl.DCUTDT.max())
        elif rec.PARAMCD == "OS":
            if rec.CNSR == 0:
                assert rec.ADT == death
            else:
                assert pd.isna(death) and rec.ADT == adsl.set_index("USUBJID").LSTALVDT[rec.USUBJID]
        elif rec.PARAMCD == "EFS":
            if not t.remission:   # never in CR/CRi: treatment failure on Day 0 once Month 3 is over
                assert rec.CNSR in (0, 5) and (rec.CNSR == 5 or rec.AVAL == 1)
            else:
                # the relapse as the assessment found it (relapse_date is the simulated onset)
                event = pd.Series([_d(t.progression_date), death]).min()
                _check(rec, event, pd.NaT)
        else:
            continue
        checked[rec.PARAMCD] += 1
    assert all(checked.values()), checked
    # every B-NHL efficacy subject has PFS, every enrolled subject OS
    nhl = adsl[(adsl.EFFFL == "Y") & (adsl.DISEASCD == "B-NHL")].USUBJID
    assert set(adtte[adtte.PARAMCD == "PFS"].USUBJID) == set(nhl)
    assert set(adtte[adtte.PARAMCD == "OS"].USUBJID) == set(adsl[adsl.ENRLFL == "Y"].USUBJID)


def test_generator_glocart_pfs_agree_with_truth(generated_glocart):
    adtte, adsl, truth = generated_glocart
    assert not adtte.duplicated(["USUBJID", "PARAMCD"]).any() and (adtte.ADT >= adtte.STARTDT).all()
    cutoff = adsl.DCUTDT.max()
    n = 0
    for rec in adtte[adtte.PARAMCD.isin(["PFST", "PFSC"])].itertuples():
        t = truth.loc[rec.USUBJID]
        prog = _d(t.pd_date if rec.PARAMCD == "PFST" else t.pd_after_cart_date)
        event = pd.Series([prog, _d(t.death_date)]).min()
        if rec.PARAMCD == "PFST" and pd.notna(event) and event > rec.STARTDT + pd.Timedelta(days=744):
            event = pd.NaT       # PFS-t runs through 2 years (Year-2 visit window end)
        _check(rec, event, _d(t.new_therapy_date), cutoff)
        n += 1
    assert n and set(adtte[adtte.PARAMCD == "PFSC"].USUBJID) == set(adsl[adsl.CARTFL == "Y"].USUBJID)
    assert (adtte[adtte.PARAMCD == "PFSC"].STARTDT.to_numpy() ==
            adtte[adtte.PARAMCD == "PFSC"].USUBJID.map(adsl.set_index("USUBJID").CTSTDT).to_numpy()).all()
