"""Subsequent anti-cancer therapy (library form SUBTX) as intervention records, both studies:
drug therapy in CM and radiotherapy / transplant in PR, category "SUBSEQUENT ANTI-CANCER
THERAPY", each SUBTX record in exactly one of the two; the survival contact no longer carries
new-therapy qualifiers (SUPPSS)."""
import pytest

from edc.read import read_transfer
from sdtm.build import build_sdtm

TRANSFERS = {"RS001": "data/raw/RS001/2025-05-27/csv", "GLOCART": "data/raw/GLOCART/2026-09-21/csv"}
CAT = "SUBSEQUENT ANTI-CANCER THERAPY"
PROCEDURES = {"2": "RADIOTHERAPY", "3": "AUTOLOGOUS STEM CELL TRANSPLANT", "4": "ALLOGENEIC STEM CELL TRANSPLANT"}


@pytest.fixture(scope="module", params=list(TRANSFERS))
def built(request):
    raw = read_transfer(TRANSFERS[request.param], study=request.param)
    return request.param, raw, build_sdtm(raw)


def test_each_subsequent_therapy_is_one_cm_or_pr_record(built):
    _study, raw, b = built
    ds = b.datasets()
    stx = raw.frames["SUBTX"]
    assert len(stx), "the sample has subsequent therapy"
    cm = ds["CM"][ds["CM"]["CMCAT"] == CAT]
    pr = ds["PR"][ds["PR"]["PRCAT"] == CAT]
    proc = stx["STXTYPE"].isin(list(PROCEDURES))
    assert len(cm) == (~proc).sum() and len(pr) == proc.sum() and len(cm) + len(pr) == len(stx)
    key = lambda f, trt, st: set(zip(f["USUBJID"].str.split("-", n=1).str[1], f[trt], f[st]))
    assert key(cm, "CMTRT", "CMSTDTC") == set(zip(stx.loc[~proc, "SUBJECT"], stx.loc[~proc, "STXTRT"],
                                                   stx.loc[~proc, "STXSTDAT"]))
    assert key(pr, "PRTRT", "PRSTDTC") == set(zip(stx.loc[proc, "SUBJECT"], stx.loc[proc, "STXTRT"],
                                                  stx.loc[proc, "STXSTDAT"]))
    assert set(pr["PRDECOD"]) <= set(PROCEDURES.values())
    assert (cm["CMSTDTC"] != "").all() and (pr["PRSTDTC"] != "").all()
    ongoing = cm["CMENRTPT"] == "ONGOING"
    assert (cm.loc[ongoing, "CMENDTC"] == "").all() and (cm.loc[~ongoing, "CMENDTC"] != "").all()
    rec = b.reconciliation.set_index("FORM").loc["SUBTX"]
    assert rec["STATUS"] == "mapped" and rec["UNACCOUNTED"] == 0
    assert set(rec["DOMAINS"].split(", ")) == {"CM", "PR"} or not proc.any() or proc.all()


def test_survival_status_carries_no_new_therapy_qualifiers(built):
    _study, raw, b = built
    ds = b.datasets()
    assert set(ds["SUPPSS"]["QNAM"]) == {"LKADTC"}
    assert not {"NEWTX", "NEWTXDAT", "NEWTXTRT"} & set(raw.frames["SURV"].columns)


def test_subsequent_therapy_starts_after_the_study_treatment_and_before_death(built):
    _study, _raw, b = built
    ds = b.datasets()
    dm = ds["DM"].set_index("USUBJID")
    for dom, st in (("CM", "CMSTDTC"), ("PR", "PRSTDTC")):
        rows = ds[dom][ds[dom][f"{dom}CAT"] == CAT]
        start = rows[st]
        assert (start > rows["USUBJID"].map(dm["RFXSTDTC"]).str[:10]).all(), dom
        death = rows["USUBJID"].map(dm["DTHDTC"]).fillna("")
        assert ((death == "") | (start < death)).all(), dom
