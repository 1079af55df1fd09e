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
from sdtm.validate.run import (
    Validation,
    Waiver,
    apply_waivers,
    build_traces,
    load_sdtm_folder,
    query_listing,
    validate,
    validate_run,
    write_conformance,
)
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
    assert ["about", "issues", "summary", "details", "rules", "data queries"] == wb.sheetnames
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2" and ws.auto_filter.ref and ws.column_dimensions["A"].width >= 6
    html = page.read_text()
    assert "<link" not in html and "src=" not in html and "conformance" in html   # one self-contained file
    assert "first 50 findings of each rule in each dataset" in html and "sortable" in html
    details = pd.read_csv(reports / "conformance.csv", keep_default_na=False)
    assert list(details.columns)[:8] == ["RULE", "SEVERITY", "DATASET", "USUBJID", "SEQ", "VARIABLE",
                                         "VALUE", "MESSAGE"]
    assert len(details) == len(result.findings)
    full = pd.read_parquet(reports / "conformance.parquet")
    key = ["RULE", "SEVERITY", "DATASET", "USUBJID", "VARIABLE", "VALUE", "MESSAGE"]
    assert sorted(map(tuple, full[key].values)) == sorted(map(tuple, result.findings[key].values))
    shown = pd.read_excel(reports / "conformance.xlsx", sheet_name="details", keep_default_na=False)
    assert shown.groupby(["RULE", "SEVERITY", "DATASET"]).size().max() <= 50
    assert len(shown) == result.findings.groupby(["RULE", "SEVERITY", "DATASET"]).size().clip(upper=50).sum()
    issues = pd.read_excel(reports / "conformance.xlsx", sheet_name="issues", keep_default_na=False)
    assert issues["COUNT"].sum() == len(result.findings)
    queries = pd.read_csv(reports / "conformance_queries.csv", keep_default_na=False)
    assert len(queries) == len(query_listing(result, build_traces(validated[0].build), validated[0].raw))
    # the other reports of the layer survive a validation run
    assert (reports / "sdtm_reconciliation.html").is_file()


def test_report_header_and_rules_sheet(validated):
    # issue 13 item 9: the standards, code version and run time in the header; a rules sheet
    # with every rule the validator runs, its source and its findings in this run
    from sdtm import metadata
    from sdtm.validate.rules import RULES
    from sdtm.validate.schemas import SCHEMA_RULES

    _, result, page, _ = validated
    about = dict(pd.read_excel(page.parent / "conformance.xlsx", sheet_name="about").values)
    assert about["standards"] == f"SDTMIG {metadata.IG_VERSION}, SDTM CT {metadata.CT_VERSION}"
    assert about["code"].startswith("clinpipe ")
    assert dt.datetime.fromisoformat(about["validated at (UTC)"]).tzinfo is not None
    assert about["validation time"].endswith(" s")
    rules = pd.read_excel(page.parent / "conformance.xlsx", sheet_name="rules", keep_default_na=False)
    assert rules["RULE"].tolist() == ["XPT-SYNC", *SCHEMA_RULES, *(r.id for r in RULES)]
    assert (rules["CHECKS"] != "").all() and (rules["SOURCE"] != "").all()
    assert set(rules["SEVERITY"]) <= {"ERROR", "WARNING", "NOTICE"}
    counts = result.findings.groupby("RULE").size()
    assert dict(zip(rules["RULE"], rules["FINDINGS"])) == {r: int(counts.get(r, 0)) for r in rules["RULE"]}
    assert rules["FINDINGS"].sum() == len(result.findings) and (rules["OPEN"] <= rules["FINDINGS"]).all()
    assert "Every rule the validator runs" in page.read_text()


def test_full_detail_is_byte_stable_whatever_the_finding_order(validated, tmp_path):
    _, result, _, _ = validated
    shuffled = Validation(result.study, result.findings.sample(frac=1, random_state=7).reset_index(drop=True))
    pages = [write_conformance(v, tmp_path / name, transfer="T") for name, v in
             (("a", result), ("b", shuffled))]
    for suffix in ("csv", "parquet"):
        a, b = (p.parent / f"conformance.{suffix}" for p in pages)
        assert a.read_bytes() == b.read_bytes(), suffix


def test_issue_summary_counts_subjects_and_gives_examples():
    f = pd.DataFrame({
        "RULE": ["A", "A", "A", "B", "A", "C"],
        "SEVERITY": ["WARNING", "WARNING", "WARNING", "ERROR", "WARNING", "NOTICE"],
        "DATASET": ["AE"] * 5 + ["TS"], "USUBJID": ["S-2", "S-1", "S-1", "S-1", "S-3", ""],
        "SEQ": [3.0, 2.0, 1.0, float("nan"), 1.5, float("nan")], "VARIABLE": ["X"] * 5 + [""],
        "VALUE": ["v"] * 4 + ["w", ""], "MESSAGE": ["m"] * 6,
        "WAIVED": ["", "Y", "", "", "", ""], "WAIVER": [""] * 6})
    issues = Validation("S", f).issues()
    assert issues[["RULE", "SEVERITY", "VALUE", "COUNT", "SUBJECTS", "WAIVED", "EXAMPLES"]].values.tolist() == [
        ["B", "ERROR", "v", 1, 1, 0, "S-1"],                          # most severe first
        ["A", "WARNING", "v", 3, 2, 1, "S-1/1, S-1/2, S-2/3"],      # then most frequent
        ["A", "WARNING", "w", 1, 1, 0, "S-3/1.5"],
        ["C", "NOTICE", "", 1, 0, 0, ""]]                            # a dataset-level finding
    assert Validation("S", f).summary().equals(Validation("S", f.sample(frac=1, random_state=1)).summary())
    assert Validation("S", f.iloc[:0]).issues().empty


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


def test_site_queries_name_the_crf_field_and_leave_sponsor_terminology_out(tmp_path):
    # issue 13 item 9: the faulty RS001 copy has one code the site entered that the CRF's
    # codelist lacks (AESDISAB 'X9') and ~1,600 unit findings from the sponsor's CT mapping
    from clinpipe.paths import faulty_data_dir

    run = run_sdtm("RS001", latest_transfer("RS001", faulty_data_dir()) / "csv", tmp_path,
                   progress=lambda m: None)
    result, page = validate_run(run, tmp_path)
    ct = result.findings[result.findings["RULE"].isin(["SCH-CT", "SCH-CTEXT"])]
    assert len(ct) > 1000
    queries = pd.read_csv(page.parent / "conformance_queries.csv", keep_default_na=False, dtype=str)
    assert len(queries) == 1
    q = queries.iloc[0]
    assert (q.FORM, q.FIELD, q.FIELD_LABEL, q.VALUE, q.SDTM) == (
        "AE", "AESDISAB", "Persistent or significant disability", "X9", "AE.AESDISAB")
    assert q.QUESTION.startswith("Please check Persistent or significant disability (AESDISAB) = 'X9'")
    assert "not sent to sites" in page.read_text()
    # a finding on a date names the CRF date field it came from, by its label
    ae = run.datasets["AE"]
    finding = {"RULE": "XR006", "SEVERITY": "ERROR", "DATASET": "AE", "USUBJID": ae["USUBJID"].iloc[0],
               "SEQ": float(ae["AESEQ"].iloc[0]), "VARIABLE": "AESTDTC", "VALUE": ae["AESTDTC"].iloc[0],
               "MESSAGE": "AESTDTC is after AEENDTC", "WAIVED": "", "WAIVER": ""}
    listed = query_listing(Validation("RS001", pd.DataFrame([finding])), build_traces(run.build), run.raw)
    assert listed[["FORM", "FIELD", "FIELD_LABEL", "SDTM"]].values.tolist() == [
        ["AE", "AESTDAT", "Start date", "AE.AESTDTC"]]
    assert listed["VISIT"].iloc[0] != "" and listed["SUBJECT"].iloc[0] in ae["USUBJID"].iloc[0]
