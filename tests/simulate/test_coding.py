"""The generator's coding of MH (MedDRA-style) and CM (standardised name + ATC-style class):
made-up codes only, every term the simulators write is coded, on the committed samples too."""
import re

import pandas as pd
import pytest

from simulate import common as C

SAMPLES = {"RS001": "data/raw/RS001/2025-05-27/csv", "GLOCART": "data/raw/GLOCART/2026-09-21/csv"}


def test_every_medical_history_term_is_coded_with_made_up_codes():
    for term, *_ in C._MH_TERMS:
        codes = C.mh_codes(term)
        assert all(codes.values()), term
        # made-up codes: 8 digits starting with 9 (never a real MedDRA code)
        for key in ("MHLLTCD", "MHPTCD", "MHSOCCD"):
            assert re.fullmatch(r"9\d{7}", codes[key]), (term, key)
    # an LLT named like its PT shares its code, and the same SOC has the same code as in AE coding
    hyp = C.mh_codes("Hypertension")
    assert hyp["MHLLTCD"] == hyp["MHPTCD"]
    infections = C.mh_codes("Pneumonia")["MHSOCCD"]
    ae_soc = {t.soc: C._code("SOC", t.soc) for t in C._AE_LIST}
    assert ae_soc["Infections and infestations"] == infections
    assert C.mh_codes("not in the dictionary") == dict.fromkeys(C.mh_codes("Hypertension"))


def test_drug_dictionary_is_made_up_atc_style():
    for name in C._CM_CODING:
        codes = C.cm_codes(name)
        assert codes["CMDRUG"] and codes["CMDRUG"] == codes["CMDRUG"].upper()
        # ATC shape (letter, 2 digits, 2 letters) with anatomical group X, which ATC does not use
        assert re.fullmatch(r"X\d\d[A-Z]{2}", codes["CMATCCD"]), name
        assert codes["CMDICTV"] == C.DRUG_DICTIONARY_VERSION
    assert all(v is None for v in C.cm_codes("Unknown herbal tea").values())
    # prior drug regimens: every one the prior-line book draws is coded; procedures are not
    drugs = {r for book in C._PRIOR_REGIMENS.values() for opts in book.values() for t, r, _ in opts
             if t not in ("2", "3", "4")}
    assert all(C.prior_codes(r)["PTDRUG"] for r in drugs)
    assert C.prior_codes("Involved-site radiotherapy")["PTDRUG"] is None


@pytest.mark.parametrize("study", list(SAMPLES))
def test_samples_carry_the_coding(study):
    mh = pd.read_csv(f"{SAMPLES[study]}/mh.csv", dtype=str, keep_default_na=False)
    cm = pd.read_csv(f"{SAMPLES[study]}/cm.csv", dtype=str, keep_default_na=False)
    assert len(mh) and (mh[["MHLLT", "MHPT", "MHPTCD", "MHSOC", "MHSOCCD", "MHDICTV"]] != "").all().all()
    assert len(cm) and (cm[["CMDRUG", "CMATC", "CMATCCD", "CMDICTV"]] != "").all().all()
    # the coding follows the verbatim term, the same everywhere
    assert (mh.groupby("MHTERM")["MHPT"].nunique() == 1).all()
    assert (cm.groupby("CMTRT")["CMDRUG"].nunique() == 1).all()
    prior = pd.read_csv(f"{SAMPLES[study]}/prior.csv", dtype=str, keep_default_na=False)
    drug = ~prior["PTTYPE"].isin(["2", "3", "4"])
    assert (prior.loc[drug, ["PTDRUG", "PTATC", "PTATCCD"]] != "").all().all()
    assert (prior.loc[~drug, ["PTDRUG", "PTATC", "PTATCCD"]] == "").all().all()
    dx = pd.read_csv(f"{SAMPLES[study]}/dx.csv", dtype=str, keep_default_na=False)
    assert (dx["DXASDAT"] != "").all()        # the baseline classifications are dated
