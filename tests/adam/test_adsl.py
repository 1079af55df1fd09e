"""ADSL from an SDTM folder this pipeline did not write: standard SDTMIG 3.4 variables only,
no SUPP--, built by hand here (as a CRO would deliver it)."""
import datetime as dt

import pandas as pd
import pytest

from adam.adsl import build_adsl
from adam.cutoff import CutoffView
from adam.merged import RuleError
from adam.metadata import load_spec
from adam.read import read_sdtm
from adam.run import resolve_cutoff, run_adam
from clinpipe.config import load_study
from clinpipe.paths import built_transfers, study_out

CUT = dt.date(2025, 5, 27)


def _dm(**over):
    # 101-001 treated DL1, died (partial date); 101-002 screen failure; 103-001 treated DL3
    # expansion, died after the cut-off
    arms = ["Escalation RS001 1x10^6 CAR+ cells/kg", "", "Expansion RS001 6x10^6 CAR+ cells/kg"]
    df = pd.DataFrame({
        "USUBJID": ["RS001-101-001", "RS001-101-002", "RS001-103-001"], "SUBJID": ["101-001", "101-002", "103-001"],
        "SITEID": ["101", "101", "103"], "COUNTRY": ["CHN", "CHN", "USA"], "AGE": [70.0, 40.0, 64.0],
        "ARMCD": ["ESC_DL1", "", "EXP_DL3"], "ARM": arms, "ACTARMCD": ["ESC_DL1", "", "EXP_DL3"], "ACTARM": arms,
        "RFICDTC": ["2024-01-02", "2024-02-01", "2025-01-10"], "DMDTC": ["2024-01-05", "2024-02-03", "2025-01-12"],
        "DTHDTC": ["2024-06", "", "2025-06-02"],
        "DTHFL": ["Y", "", "Y"],
    })
    df = df.assign(STUDYID="RS001", DOMAIN="DM", AGEU="YEARS", SEX="F", RACE="ASIAN", ETHNIC="NOT REPORTED")
    return df.assign(**over)


def _sdtm(tmp_path, dm=None):
    folder = tmp_path / "sdtm"
    folder.mkdir()
    (dm if dm is not None else _dm()).to_parquet(folder / "dm.parquet")
    ex = pd.DataFrame({
        "STUDYID": "RS001", "DOMAIN": "EX",
        "USUBJID": ["RS001-101-001"] * 3 + ["RS001-103-001"] * 2,
        "EXSEQ": [1.0, 2, 3, 1, 2],
        "EXTRT": ["FLUDARABINE", "FLUDARABINE", "RS001", "FLUDARABINE", "RS001"],
        "EXCAT": ["LYMPHODEPLETION", "LYMPHODEPLETION", "CELL THERAPY", "LYMPHODEPLETION", "CELL THERAPY"],
        "EXSTDTC": ["2024-01-20", "2024-01-21", "2024-01-25T10:40", "2025-02-01", "2025-02-06T09:00"],
        "EXDOSE": [30.0, 30, 1e6, 30, 6e6], "EXDOSU": ["mg/m2", "mg/m2", "CAR+ cells/kg", "mg/m2", "CAR+ cells/kg"],
    })
    ex.to_parquet(folder / "ex.parquet")
    pd.DataFrame({
        "STUDYID": "RS001", "DOMAIN": "DS", "USUBJID": ["RS001-101-001", "RS001-101-002", "RS001-103-001"],
        "DSSEQ": [1.0, 1, 1], "DSCAT": "DISPOSITION EVENT", "DSDECOD": ["DEATH", "SCREEN FAILURE", "DEATH"],
        "DSTERM": ["DEATH", "SCREEN FAILURE", "DEATH"], "DSSTDTC": ["2024-06", "2024-02-15", "2025-06-02"],
    }).to_parquet(folder / "ds.parquet")
    pd.DataFrame({
        "STUDYID": "RS001", "DOMAIN": "AE", "USUBJID": ["RS001-101-001", "RS001-103-001", "RS001-103-001"],
        "AESEQ": [1.0, 1, 2], "AETERM": ["X", "Y", "Z"], "AEDECOD": ["Pyrexia", "Cytokine release syndrome", "Nausea"],
        "AEBODSYS": ["General disorders and administration site conditions", "Immune system disorders",
                     "Gastrointestinal disorders"], "AETOXGR": ["2", "4", "1"], "AEREL": "PROBABLY RELATED",
        "AESTDTC": ["2024-05-30", "2025-05-20", "2025-05-30"], "AEENDTC": ["", "2025-05-28", ""],
    }).to_parquet(folder / "ae.parquet")
    pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "MH", "USUBJID": ["RS001-101-001", "RS001-103-001"],
                  "MHSEQ": [1.0, 1], "MHTERM": ["DLBCL", "B-ALL"], "MHCAT": "PRIMARY DIAGNOSIS",
                  "MHSCAT": ["B-CELL NON-HODGKIN LYMPHOMA", "B-CELL ACUTE LYMPHOBLASTIC LEUKEMIA"],
                  "MHSTDTC": ["2020", "2021-03"]}).to_parquet(folder / "mh.parquet")
    pd.DataFrame({"STUDYID": "RS001", "DOMAIN": "TS", "TSSEQ": [1.0], "TSPARMCD": ["DCUTDTC"],
                  "TSPARM": ["Data Cutoff Date"], "TSVAL": [CUT.isoformat()]}).to_parquet(folder / "ts.parquet")
    return folder


@pytest.fixture
def adsl(tmp_path):
    sdtm = read_sdtm(_sdtm(tmp_path))
    return build_adsl(sdtm, load_study("RS001"), CUT).set_index("SUBJID")


def test_one_record_per_dm_subject_in_spec_order(adsl):
    assert list(adsl.index) == ["101-001", "101-002", "103-001"]
    names = load_spec("ADSL", "RS001").names
    after_adae = {"DLTFL", "DLTINVFL", "DLTEVLFL"}      # added by finish_adsl once ADAE exists
    assert list(adsl.columns) == [n for n in names if n != "SUBJID" and n not in after_adae]


def test_treatment_from_study_dose_levels(adsl):
    assert adsl.loc["101-001", "TRT01P"] == "DL1 1x10^6 CAR+ cells/kg" and adsl.loc["101-001", "TRT01PN"] == 1
    assert adsl.loc["103-001", "TRT01A"] == "DL3 6x10^6 CAR+ cells/kg" and adsl.loc["103-001", "COHORT"] == "EXPANSION"
    assert pd.isna(adsl.loc["101-002", "TRT01P"]) or adsl.loc["101-002", "TRT01P"] in ("", None)


def test_key_dates_from_ex(adsl):
    assert adsl.ENRLDT["101-001"] == pd.Timestamp("2024-01-05") and pd.isna(adsl.ENRLDT["101-002"])
    assert adsl.HISTOL["103-001"] == "B-ALL" and adsl.DISEASCD["103-001"] == "B-ALL"
    s = adsl.loc["101-001"]
    assert s.LDSTDT == pd.Timestamp("2024-01-20") and s.TRTSDT == pd.Timestamp("2024-01-25")
    assert s.TRTSDTM == pd.Timestamp("2024-01-25 10:40")
    assert pd.isna(adsl.loc["101-002", "TRTSDT"])


def test_population_flags_and_groups(adsl):
    assert adsl.ENRLFL.to_dict() == {"101-001": "Y", "101-002": "N", "103-001": "Y"}
    assert adsl.SAFFL.to_dict() == {"101-001": "Y", "101-002": "N", "103-001": "Y"}
    assert adsl.AGEGR1.to_dict() == {"101-001": ">=65", "101-002": "<65", "103-001": "<65"}
    assert adsl.REGION1["103-001"] == "North America"


def test_death_imputed_and_cut_off(adsl):
    s = adsl.loc["101-001"]
    assert s.DTHDT == pd.Timestamp("2024-06-01") and s.DTHDTF == "D"
    # a death after the cut-off is not known at it: no death, end of study still open
    s = adsl.loc["103-001"]
    assert s.DTHFL == "" and pd.isna(s.DTHDT) and s.EOSSTT == "ONGOING"
    assert s.DCUTDT == pd.Timestamp(CUT)


def test_end_of_study_and_last_known_alive(adsl):
    assert adsl.EOSSTT.to_dict() == {"101-001": "DISCONTINUED", "101-002": "DISCONTINUED", "103-001": "ONGOING"}
    assert adsl.DCSREAS.to_dict() == {"101-001": "DEATH", "101-002": "SCREEN FAILURE", "103-001": ""}
    # 103-001: AE start 2025-05-20 and end 2025-05-28 -> the end is after the cut-off; the AE of
    # 2025-05-30 is left out whole
    assert adsl.LSTALVDT["103-001"] == pd.Timestamp("2025-05-20")
    assert adsl.LSTALVDT["101-001"] == pd.Timestamp("2024-05-30")   # a partial death date is no contact


def test_cutoff_from_ts_and_records_left_out(tmp_path):
    sdtm = read_sdtm(_sdtm(tmp_path))
    assert resolve_cutoff(sdtm, load_study("RS001"), None) == CUT
    view = CutoffView(sdtm, CUT)
    assert len(view.get("AE")) == 2 and view.dropped["AE"] == 1


def test_missing_dm_variable_is_named(tmp_path):
    sdtm = read_sdtm(_sdtm(tmp_path, _dm().drop(columns="ACTARMCD")))
    with pytest.raises(Exception) as exc:
        build_adsl(sdtm, load_study("RS001"), CUT)
    assert "ACTARMCD" in str(exc.value) and "dm.parquet" in str(exc.value)


def test_unknown_country_must_be_grouped_on_purpose(tmp_path):
    sdtm = read_sdtm(_sdtm(tmp_path, _dm(COUNTRY=["CHN", "CHN", "DEU"])))
    with pytest.raises(RuleError) as exc:
        build_adsl(sdtm, load_study("RS001"), CUT)
    assert "DEU" in exc.value.message and "REGION1" in exc.value.message and "adsl.yaml" in exc.value.message


def test_run_writes_xpt_parquet_and_manifest(tmp_path):
    run = run_adam("RS001", _sdtm(tmp_path), tmp_path / "out", progress=lambda m: None)
    folder = study_out("RS001", "adam", tmp_path / "out")
    # no LB/VS/EG/PC in this folder: those datasets are not built
    assert {p.name for p in folder.iterdir()} == {"manifest.json", *(f"{d}.{x}" for d in ("adsl", "adae", "adex")
                                                                     for x in ("xpt", "parquet"))}
    assert run.cutoff == CUT and run.dropped["AE"] == 1
    import json
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["data_cutoff"] == "2025-05-27" and manifest["datasets"]["ADSL"]["rows"] == 3
    # ADAE from standard AE variables only (no AEGRPID, no SUPPAE): the grading scale by term,
    # the DLT re-derived (grade 4 CRS on Day 14 -> CRS-G4), the AE after the cut-off left out
    adae = run.datasets["ADAE"].set_index("AESEQ")
    assert len(adae) == 2 and run.written["ADAE"]["rows"] == 2
    crs = adae[adae.USUBJID == "RS001-103-001"].loc[1.0]
    assert crs.ATOXSCL == "ASTCT 2019" and crs.ATOXGRN == 4 and crs.AESICAT == "CRS"
    assert crs.TRTEMFL == "Y" and crs.ASTDY == 104 and crs.DLTFL == ""      # Day 103: outside the window
    adsl = run.datasets["ADSL"].set_index("SUBJID")
    assert adsl.DLTEVLFL.to_dict() == {"101-001": "Y", "101-002": "N", "103-001": "Y"}
    assert run.validation.open("ERROR").empty, run.validation.findings.to_string()


def test_cli_bad_sdtm_is_one_clear_line_and_writes_nothing(tmp_path):
    from click.testing import CliRunner

    from clinpipe.cli import main

    folder = _sdtm(tmp_path, _dm().drop(columns="ACTARMCD"))
    res = CliRunner().invoke(main, ["adam", "--study", "RS001", "--sdtm", str(folder), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "ACTARMCD" in res.output and "dm.parquet" in res.output and "Traceback" not in res.output
    assert not built_transfers("RS001", tmp_path / "o", "adam")
    # an AE of a subject missing from DM: named, nothing written
    ae = pd.read_parquet(folder / "ae.parquet")
    (folder / "dm.parquet").unlink()
    _dm().to_parquet(folder / "dm.parquet")
    ae.assign(USUBJID=["RS001-999-999", "RS001-103-001", "RS001-103-001"]).to_parquet(folder / "ae.parquet")
    res = CliRunner().invoke(main, ["adam", "--study", "RS001", "--sdtm", str(folder), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "RS001-999-999" in res.output and "not in DM" in res.output, res.output
    assert not built_transfers("RS001", tmp_path / "o", "adam")


def test_rerun_is_byte_identical(tmp_path):
    folder = _sdtm(tmp_path)
    a = run_adam("RS001", folder, tmp_path / "a", progress=lambda m: None)
    b = run_adam("RS001", folder, tmp_path / "b", progress=lambda m: None)
    assert {n: w["sha256"] for n, w in a.written.items()} == {n: w["sha256"] for n, w in b.written.items()}
    manifest = "manifest.json"
    assert (study_out("RS001", "adam", tmp_path / "a") / manifest).read_bytes() == \
        (study_out("RS001", "adam", tmp_path / "b") / manifest).read_bytes()
