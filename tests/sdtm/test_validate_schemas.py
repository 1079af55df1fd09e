"""Metadata-built pandera schemas: the sample studies pass, and each check kind fires."""
from __future__ import annotations

import pandas as pd
import pytest

from clinpipe.paths import latest_transfer
from sdtm.metadata import domain
from sdtm.run import run_sdtm
from sdtm.validate.findings import COLUMNS
from sdtm.validate.schemas import build_schema, schema_findings


@pytest.fixture(scope="module", params=["RS001", "GLOCART"])
def sample_sdtm(request, tmp_path_factory):
    study = request.param
    run = run_sdtm(study, latest_transfer(study) / "csv", tmp_path_factory.mktemp(study),
                   progress=lambda *_: None)
    # Validate what is delivered (the written files): the in-memory frames still hold some Num
    # variables as text that the writer converts.
    return {name: pd.read_parquet(info["parquet"]) for name, info in run.written.items()}


def test_sample_studies_have_no_schema_errors(sample_sdtm):
    found = schema_findings(sample_sdtm)
    errors = found[found["SEVERITY"] == "ERROR"]
    assert errors.empty, errors.drop_duplicates(["RULE", "DATASET", "VARIABLE"]).to_string()


def _ae(**overrides) -> pd.DataFrame:
    """A conformant two-record AE with every Req and Exp variable; overrides replace columns."""
    req_exp = [v for v in domain("AE").variables if v.core in ("Req", "Exp")]
    df = pd.DataFrame({v.name: ([1.0, 2.0] if v.type == "Num" else ["", ""]) for v in req_exp})
    df = df.assign(STUDYID="S1", DOMAIN="AE", USUBJID=["S1-001", "S1-001"], AESEQ=[1.0, 2.0],
                   AETERM="Headache", AEDECOD="Headache", AESTDTC=["2025-01-02", "2025-01-03T10:15"],
                   AESTDY=[1.0, 2.0], AEENDY=[3.0, 4.0])
    return df.assign(**overrides)


def _only(found: pd.DataFrame, rule: str) -> pd.DataFrame:
    return found[found["RULE"] == rule]


def test_conformant_frame_is_clean():
    found = schema_findings({"AE": _ae()})
    assert list(found.columns) == COLUMNS
    assert found.empty, found.to_string()


def test_bad_iso_date_is_error():
    found = _only(schema_findings({"AE": _ae(AESTDTC=["2025-13-01", "2025-02-30"])}), "SCH-ISO8601")
    assert set(found["VALUE"]) == {"2025-13-01", "2025-02-30"}
    assert set(found["SEVERITY"]) == {"ERROR"}
    assert list(found["SEQ"]) == [1.0, 2.0] and set(found["USUBJID"]) == {"S1-001"}


@pytest.mark.parametrize("value", ["2025", "2025-01", "2025-01-02", "2025-01-02T10", "2025-01-02T10:15",
                                   "2025-01-02T10:15:30", "2024-02-29", "2025-01-02/2025-01-05", ""])
def test_valid_iso_dates_pass(value):
    assert _only(schema_findings({"AE": _ae(AESTDTC=value)}), "SCH-ISO8601").empty


@pytest.mark.parametrize("value", ["2025-1-02", "2023-02-29", "2025-01-02T24:00", "2025-01T10:00",
                                   "02JAN2025", "2025-01-02 10:15"])
def test_invalid_iso_dates_fail(value):
    assert len(_only(schema_findings({"AE": _ae(AESTDTC=value)}), "SCH-ISO8601")) == 2


def test_missing_required_value_and_variable():
    found = schema_findings({"AE": _ae(AETERM=["Headache", " "])})
    req = _only(found, "SCH-REQ")
    assert req[["VARIABLE", "SEQ", "SEVERITY"]].values.tolist() == [["AETERM", 2.0, "ERROR"]]
    found = _only(schema_findings({"AE": _ae().drop(columns="AEDECOD")}), "SCH-REQ")
    assert found[["VARIABLE", "SEVERITY"]].values.tolist() == [["AEDECOD", "ERROR"]]


def test_missing_expected_variable_is_warning():
    found = _only(schema_findings({"AE": _ae().drop(columns="AESTDTC")}), "SCH-EXP")
    assert found[["VARIABLE", "SEVERITY"]].values.tolist() == [["AESTDTC", "WARNING"]]


def test_unknown_code_non_extensible_is_error_extensible_is_warning():
    # AESER uses NY (C66742, non-extensible); EPOCH uses C99079 (extensible).
    found = schema_findings({"AE": _ae(AESER=["Y", "MAYBE"], EPOCH=["TREATMENT", "WANDERING"])})
    ct = _only(found, "SCH-CT")
    assert ct[["VARIABLE", "VALUE", "SEVERITY", "SEQ"]].values.tolist() == [["AESER", "MAYBE", "ERROR", 2.0]]
    ext = _only(found, "SCH-CTEXT")
    assert ext[["VARIABLE", "VALUE", "SEVERITY"]].values.tolist() == [["EPOCH", "WANDERING", "WARNING"]]


def test_duplicate_key():
    found = _only(schema_findings({"AE": _ae(AESEQ=[1.0, 1.0])}), "SCH-KEY")
    assert len(found) == 2 and set(found["SEVERITY"]) == {"ERROR"}


def test_supp_and_ts_keys():
    supp = pd.DataFrame({"STUDYID": "S1", "RDOMAIN": "AE", "USUBJID": "S1-001", "IDVAR": "AESEQ",
                         "IDVARVAL": "1", "QNAM": "AETRTEM", "QLABEL": "Treatment Emergent Flag",
                         "QVAL": ["Y", "N"], "QORIG": "Derived", "QEVAL": ""})
    found = schema_findings({"SUPPAE": supp})
    assert set(found["RULE"]) == {"SCH-KEY"} and len(found) == 2
    found = schema_findings({"SUPPAE": supp.assign(RDOMAIN="CM", QNAM=["A", "B"])})
    assert set(found["RULE"]) == {"SCH-DOMAIN"}
    assert "SCH-KEY" in set(schema_findings({"TS": pd.DataFrame(
        {"STUDYID": "S1", "DOMAIN": "TS", "TSSEQ": [1.0, 1.0], "TSPARMCD": "AGEMIN",
         "TSPARM": "Planned Minimum Age of Subjects", "TSVAL": "P18Y"})})["RULE"])


def test_study_day_zero_and_bad_seq():
    found = schema_findings({"AE": _ae(AESTDY=[0.0, 1.0], AESEQ=[1.5, -2.0])})
    assert _only(found, "SCH-DY0")[["VARIABLE", "VALUE"]].values.tolist() == [["AESTDY", "0.0"]]
    assert len(_only(found, "SCH-SEQ")) == 2


def test_long_value():
    found = _only(schema_findings({"AE": _ae(AETERM=["x" * 201, "x" * 200])}), "SCH-LEN")
    assert found[["VARIABLE", "SEQ"]].values.tolist() == [["AETERM", 1.0]]


def test_unexpected_variable():
    found = _only(schema_findings({"AE": _ae(AEFOO="bar")}), "SCH-VAR")
    assert found[["VARIABLE", "SEVERITY"]].values.tolist() == [["AEFOO", "ERROR"]]


def test_num_column_holding_text_and_char_holding_numbers():
    found = _only(schema_findings({"AE": _ae(AESTDY=["abc", 2.0], AETERM=[1.0, 2.0])}), "SCH-TYPE")
    assert sorted(found[["VARIABLE", "SEQ"]].values.tolist()) == [["AESTDY", 1.0], ["AETERM", 1.0],
                                                                  ["AETERM", 2.0]]


def test_negative_age():
    dm = pd.DataFrame({"STUDYID": "S1", "DOMAIN": "DM", "USUBJID": ["S1-001", "S1-002"],
                       "SUBJID": ["001", "002"], "SITEID": "01", "AGE": [34.0, -1.0], "SEX": "F",
                       "ARMCD": "A", "ARM": "Arm A", "ACTARMCD": "A", "ACTARM": "Arm A", "COUNTRY": "USA"})
    found = _only(schema_findings({"DM": dm}), "SCH-RANGE")
    assert found[["USUBJID", "VALUE"]].values.tolist() == [["S1-002", "-1.0"]]


def test_empty_dataset_and_unknown_dataset_do_not_crash():
    found = schema_findings({"AE": _ae().iloc[0:0]})
    assert _only(found, "SCH-EMPTY")["SEVERITY"].tolist() == ["WARNING"]
    assert schema_findings({"AE": pd.DataFrame()})["RULE"].value_counts()["SCH-REQ"] >= 4
    assert schema_findings({"XX": pd.DataFrame({"A": [1]})})["RULE"].tolist() == ["SCH-DS"]


def test_schema_is_built_from_metadata():
    schema = build_schema("SUPPLB", ["STUDYID"])
    assert set(schema.columns) == {"STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM",
                                   "QLABEL", "QVAL", "QORIG", "QEVAL"}
    assert schema.unique is None  # key variables absent: uniqueness cannot be tested
