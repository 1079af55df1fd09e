"""Golden test of the engine on a literal two-record transfer: --SEQ, SUPP-- and rejections."""
import pandas as pd

from clinpipe.config import load_study
from edc.forms import load_forms
from edc.read import RawTransfer, ReaderFinding
from sdtm.engine import map_domain
from sdtm.spec import load_specs


def _frame(form, rows):
    cols = form.columns()
    base = {c: "" for c in cols}
    return pd.DataFrame([{**base, **r} for r in rows], columns=cols, dtype=object)


def test_ae_records_seq_supp_and_rejections():
    study, forms = load_study("RS001"), load_forms("RS001")
    sys = {"STUDYID": "RS001", "SITEID": "101", "FOLDER": "LOGS", "FOLDERSEQ": "1", "RECORDACTIVE": "1"}
    ae = _frame(forms.form("AE"), [
        {**sys, "SUBJECT": "101-001", "FORM": "AE", "RECORDID": "10", "RECORDPOSITION": "1",
         "AETERM": "Fever", "AEPT": "Pyrexia", "AESTDAT": "2025-03-09", "AESER": "N", "AESER_DEC": "No",
         "AETOXGR": "2", "AEDLT": "N", "AEDLT_DEC": "No", "AEREL": "3"},
        {**sys, "SUBJECT": "101-001", "FORM": "AE", "RECORDID": "11", "RECORDPOSITION": "2",
         "AETERM": "CRS", "AEPT": "Cytokine release syndrome", "AESTDAT": "2025-03-08", "AESER": "Y",
         "AESER_DEC": "Yes", "AEASTCT": "3", "AEDLT": "Y", "AEDLT_DEC": "Yes", "AEREL": "5"},
        {**sys, "SUBJECT": "101-001", "FORM": "AE", "RECORDID": "12", "RECORDPOSITION": "3",
         "RECORDACTIVE": "0", "AETERM": "Typo", "AESTDAT": "2025-03-08"},
        {**sys, "SUBJECT": "101-999", "FORM": "AE", "RECORDID": "13", "RECORDPOSITION": "1",
         "AETERM": "Orphan", "AESTDAT": "2025-03-08"},
    ])
    enr = _frame(forms.form("ENR"), [{**sys, "SUBJECT": "101-001", "FORM": "ENR", "RECORDID": "1",
                                      "RECORDPOSITION": "1", "FOLDER": "SCR", "ELIG": "Y"}])
    frames = {f.oid: _frame(f, []) for f in forms.forms} | {"AE": ae, "ENR": enr}
    raw = RawTransfer("RS001", None, None, "csv", frames, {}, {}, [], forms=forms)
    (spec,) = load_specs("RS001", forms)["AE"]
    result, rejected = map_domain(spec, raw, study,
                                  ref_start=pd.Series({"RS001-101-001": "2025-03-07"}))
    ae_out = result.data
    # --SEQ follows the natural key (start date first): CRS on Mar 8 is 1, fever on Mar 9 is 2
    assert ae_out[["AETERM", "AESEQ", "AESTDY", "AETOXGR", "AESER"]].values.tolist() == [
        ["CRS", 1.0, 2.0, "3", "Y"], ["Fever", 2.0, 3.0, "2", "N"]]
    supp = result.supp
    dlt = supp[supp.QNAM == "AEDLT"][["IDVAR", "IDVARVAL", "QVAL", "QLABEL", "QORIG"]].values.tolist()
    assert dlt == [["AESEQ", "1", "Y", "Dose-Limiting Toxicity (Investigator)", "CRF"],
                   ["AESEQ", "2", "N", "Dose-Limiting Toxicity (Investigator)", "CRF"]]
    scale = dict(zip(supp[supp.QNAM == "AETOXSC"].IDVARVAL, supp[supp.QNAM == "AETOXSC"].QVAL))
    assert scale == {"1": "ASTCT 2019", "2": "CTCAE V5.0"}
    assert sorted(zip(rejected.RECORDID, rejected.REASON)) == [
        ("12", "inactivated in the EDC"),
        ("13", "subject has no enrolment record: not an enrolled study subject")]
    assert sorted(result.trace.RECORDID) == ["10", "11"]


def test_duplicate_record_is_rejected_naming_the_original():
    study, forms = load_study("RS001"), load_forms("RS001")
    sys = {"STUDYID": "RS001", "SITEID": "101", "SUBJECT": "101-001", "FOLDER": "LOGS", "FOLDERSEQ": "1",
           "RECORDACTIVE": "1", "FORM": "AE", "AETERM": "Fever", "AEPT": "Pyrexia",
           "AESTDAT": "2025-03-09"}
    ae = _frame(forms.form("AE"), [{**sys, "RECORDID": "10", "RECORDPOSITION": "1"},
                                   {**sys, "RECORDID": "11", "RECORDPOSITION": "2"}])
    enr = _frame(forms.form("ENR"), [{"STUDYID": "RS001", "SUBJECT": "101-001", "RECORDID": "1",
                                      "RECORDACTIVE": "1", "FOLDER": "SCR"}])
    frames = {f.oid: _frame(f, []) for f in forms.forms} | {"AE": ae, "ENR": enr}
    finding = ReaderFinding("ae.csv", "AE", "11", "101-001", "", "", "duplicate_record",
                            "same data as active record 10")
    raw = RawTransfer("RS001", None, None, "csv", frames, {}, {}, [finding], forms=forms)
    (spec,) = load_specs("RS001", forms)["AE"]
    result, rejected = map_domain(spec, raw, study)
    assert len(result.data) == 1
    assert rejected.RECORDID.tolist() == ["11"]
    assert "record 10" in rejected.REASON.iloc[0]
