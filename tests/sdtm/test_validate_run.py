"""Validation end to end: sample studies clean, reports open, waivers, any SDTM folder, and a
blocking Dagster check that stops downstream assets on an ERROR."""
import datetime as dt

import dagster as dg
import openpyxl
import pandas as pd
import pytest

from clinpipe.config import load_study
from clinpipe.paths import latest_transfer
from edc.export import build_frames
from edc.forms import load_forms
from edc.transfer import write_transfer
from sdtm.run import run_sdtm
from sdtm.validate.run import Waiver, apply_waivers, load_sdtm_folder, validate, validate_run
from simulate.run import simulate_study


@pytest.fixture(scope="module", params=["RS001", "GLOCART"])
def validated(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    run = run_sdtm(request.param, latest_transfer(request.param) / "csv", out, progress=lambda m: None)
    result, page = validate_run(run, out)
    return run, result, page, out


def test_sample_studies_have_no_open_error(validated):
    _, result, _, _ = validated
    assert result.open("ERROR").empty, result.open("ERROR").head(20).to_string()


def test_reports_open(validated):
    _, result, page, _ = validated
    reports = page.parent
    wb = openpyxl.load_workbook(reports / "conformance.xlsx")
    assert {"about", "summary", "details", "data queries"} <= set(wb.sheetnames)
    html = page.read_text()
    assert "<script" not in html and "<link" not in html and "conformance" in html
    details = pd.read_csv(reports / "conformance.csv", keep_default_na=False)
    assert list(details.columns)[:8] == ["RULE", "SEVERITY", "DATASET", "USUBJID", "SEQ", "VARIABLE",
                                         "VALUE", "MESSAGE"]
    assert len(details) == len(result.findings)
    # the other reports of the layer survive a validation run
    assert (reports / "sdtm_reconciliation.html").is_file()


def test_validating_the_written_folder_gives_the_same_findings(validated):
    run, result, _, _ = validated
    again = validate(load_sdtm_folder(run.folder), load_study(run.study), study=run.study)
    key = ["RULE", "DATASET", "USUBJID", "VARIABLE"]
    assert sorted(map(tuple, again.findings[key].values)) == sorted(map(tuple, result.findings[key].values))


def test_waiver_marks_and_unblocks():
    findings = pd.DataFrame([["SCH-CT", "ERROR", "DM", "S-1", float("nan"), "SEX", "X9", "not in CT"]],
                            columns=["RULE", "SEVERITY", "DATASET", "USUBJID", "SEQ", "VARIABLE", "VALUE", "MESSAGE"])
    w = Waiver(rule="SCH-CT", dataset="DM", variable="SEX", reason="site code agreed with the sponsor",
               approved_by="Data manager", approved_on=dt.date(2026, 11, 1))
    marked = apply_waivers(findings, [w])
    assert marked.WAIVED.tolist() == ["Y"] and "Data manager" in marked.WAIVER.iloc[0]


def _faulty_transfer(raw_root):
    """An RS001 transfer whose DM has a sex code outside CT: an ERROR in DM."""
    study, forms = load_study("RS001"), load_forms("RS001")
    sim = simulate_study("RS001", 8, seed=3)
    frames = build_frames(sim, forms, study, sim.seed)
    frames["DM"].loc[0, ["SEX", "SEX_DEC"]] = ["X9", ""]
    folder = raw_root / "RS001" / sim.transfer_date.isoformat()
    write_transfer(frames, forms, study, folder, format="csv", transfer_date=sim.transfer_date)
    return folder.name


def test_blocking_check_stops_downstream(tmp_path, monkeypatch):
    import shutil

    from pipelines.raw import build_raw_asset
    from pipelines.sdtm import build_sdtm_assets

    clean = latest_transfer("RS001")
    monkeypatch.setenv("CLINPIPE_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("CLINPIPE_RAW", str(tmp_path / "raw"))
    ran = []

    @dg.asset(key=["RS001", "adam", "probe"], deps=[dg.AssetKey(["RS001", "sdtm", "DM"])],
              partitions_def=dg.DynamicPartitionsDefinition(name="RS001_transfers"))
    def probe():
        ran.append(True)

    assets = [build_raw_asset("RS001"), build_sdtm_assets("RS001"), probe]
    faulty = _faulty_transfer(tmp_path / "raw")
    shutil.copytree(clean, tmp_path / "raw" / "RS001" / clean.name)
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("RS001_transfers", [faulty, clean.name])
        result = dg.materialize(assets, partition_key=faulty, instance=instance, raise_on_error=False)
        checks = {c.asset_key.path[-1]: c.passed for c in result.get_asset_check_evaluations()}
        assert checks["DM"] is False
        assert ran == [], "downstream asset ran although DM failed its blocking check"

        # the clean sample: the check passes and downstream runs
        result = dg.materialize(assets, partition_key=clean.name, instance=instance)
        assert result.success and ran == [True]
