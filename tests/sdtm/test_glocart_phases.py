"""GLOCART SDTM from the committed sample: the end-of-phase-1 disposition (COH -> DS), the
shortened arm of subjects who stop after phase 1 (DM / SE), the stage EPOCHs and the response
phase (RS), and subsequent anti-cancer therapy (CM / PR)."""
import pandas as pd
import pytest

from edc.read import read_transfer
from sdtm.build import build_sdtm

TRANSFER = "data/raw/GLOCART/2026-09-21/csv"


@pytest.fixture(scope="module")
def built():
    raw = read_transfer(TRANSFER, study="GLOCART")
    return raw, build_sdtm(raw)


def _coh(built) -> pd.DataFrame:
    raw = built[0]
    coh = raw.frames["COH"]
    return coh[coh["RECORDACTIVE"] != "N"] if "RECORDACTIVE" in coh else coh


def test_end_of_phase_1_decision_is_a_ds_disposition_event(built):
    _raw, b = built
    ds = b.datasets()["DS"]
    eop1 = ds[ds["DSSCAT"] == "STUDY TREATMENT"]
    coh = _coh(built)
    assert len(eop1) == len(coh) and eop1["USUBJID"].is_unique
    assert (eop1["DSCAT"] == "DISPOSITION EVENT").all() and (eop1["EPOCH"] == "INDUCTION TREATMENT").all()
    by_subject = eop1.set_index(eop1["USUBJID"].str.replace("GLOCART-", "", regex=False))
    proceed = coh.set_index("SUBJECT")
    assert (by_subject.loc[proceed.index, "DSSTDTC"] == proceed["COHDAT"]).all()
    went_on = proceed.index[proceed["COHPROC"] == "Y"]
    assert (by_subject.loc[went_on, "DSDECOD"] == "COMPLETED").all()
    # The sample's reasons for not proceeding (issue 12): PD 6, death 3, AE 1, manufacturing 1.
    stopped = by_subject.drop(went_on)["DSDECOD"].value_counts().to_dict()
    assert stopped == {"PROGRESSIVE DISEASE": 6, "DEATH": 3, "ADVERSE EVENT": 1, "TECHNICAL PROBLEMS": 1}
    mfg = by_subject[by_subject["DSDECOD"] == "TECHNICAL PROBLEMS"]
    assert mfg["DSTERM"].str.contains("CAR-T").all()


def test_no_treated_subject_is_without_an_arm(built):
    _raw, b = built
    dm = b.datasets()["DM"]
    treated = dm[dm["RFXSTDTC"] != ""]
    decided = treated[treated["SUBJID"].isin(_coh(built)["SUBJECT"])]
    assert (decided["ARMCD"] != "").all(), decided[["USUBJID", "ARMNRS"]]
    glofit = dm[dm["ARMCD"] == "GLOFIT"]
    stopped = _coh(built).query("COHPROC == 'N'")["SUBJECT"]
    assert set(glofit["SUBJID"]) == set(stopped) and len(glofit) == 11
    assert (glofit["ARM"] == "Glofitamab-based salvage only").all()
    assert (glofit["ACTARMCD"] == "GLOFIT").all() and (glofit["ARMNRS"] == "").all()
    # ACTARMUD only for unplanned treatment.
    assert (dm["ACTARMUD"] != "").sum() == (dm["ARMNRS"] == "UNPLANNED TREATMENT").sum()
    se = b.datasets()["SE"]
    shortened = se[se["USUBJID"].isin(glofit["USUBJID"])]
    assert set(shortened["ETCD"]) <= {"SCRN", "GLOX", "FU"} and shortened["TAETORD"].notna().all()


def test_epochs_name_the_stages(built):
    b = built[1]
    ds = b.datasets()
    se = ds["SE"]
    assert se.groupby("ETCD")["EPOCH"].first().to_dict() == {
        "SCRN": "SCREENING", "GLOX": "INDUCTION TREATMENT", "FC": "CONDITIONING", "COND": "CONDITIONING",
        "ASCT": "CELLULAR THERAPY", "CART": "CELLULAR THERAPY", "CONS": "CONSOLIDATION TREATMENT",
        "FU": "FOLLOW-UP"}
    ex = ds["EX"]
    by_trt = ex.groupby("EXTRT")["EPOCH"].agg(lambda s: set(s) - {""})
    assert by_trt["FLUDARABINE"] == {"CONDITIONING"} and by_trt["MELPHALAN"] == {"CONDITIONING"}
    assert by_trt["OBINUTUZUMAB"] == {"INDUCTION TREATMENT"}


def test_response_phase_is_the_epoch(built):
    """The CRF's before/after-CAR-T answer (RSPHASE, not submitted) is what EPOCH and the arm
    say: before CAR-T = the salvage epoch or a subject who never had CAR-T (arm GLOFIT)."""
    raw, b = built
    ds = b.datasets()
    assert "SUPPRS" not in ds
    rs = ds["RS"]
    rsp = raw.frames["RSP"].assign(USUBJID=lambda f: "GLOCART-" + f["SUBJECT"])
    phase = rsp.set_index(["USUBJID", "RSDAT"])["RSPHASE"]
    ovr = rs[rs["RSTESTCD"] == "OVRLRESP"]
    got = phase.reindex(list(zip(ovr["USUBJID"], ovr["RSDTC"]))).to_numpy()
    arm = ovr["USUBJID"].map(ds["DM"].set_index("USUBJID")["ACTARMCD"])
    before = (ovr["EPOCH"] == "INDUCTION TREATMENT") | (arm == "GLOFIT")
    assert len(ovr) and ((got == "PRE") == before.to_numpy()).all()
    after_epochs = set(ovr.loc[~before, "EPOCH"])
    assert after_epochs <= {"CELLULAR THERAPY", "CONSOLIDATION TREATMENT", "FOLLOW-UP"}


def test_follow_up_of_a_phase_1_stopper_starts_at_the_decision(built):
    _raw, b = built
    ds = b.datasets()
    se, dm = ds["SE"], ds["DM"]
    stoppers = dm.loc[dm["ARMCD"] == "GLOFIT", "USUBJID"]
    fu = se[(se["ETCD"] == "FU") & se["USUBJID"].isin(stoppers)].set_index("USUBJID")["SESTDTC"]
    coh = _coh(built).assign(USUBJID=lambda f: "GLOCART-" + f["SUBJECT"]).set_index("USUBJID")["COHDAT"]
    assert len(fu) and (fu == coh.reindex(fu.index)).all()
    glox = se[(se["ETCD"] == "GLOX") & se["USUBJID"].isin(stoppers)].set_index("USUBJID")["SEENDTC"]
    assert (glox.reindex(fu.index) == fu).all()
