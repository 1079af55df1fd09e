"""Dagster wiring: the graph per configured study, transfer partitions, jobs, the sensor and
the nightly schedule, a refresh materialised end to end, a new study from a mappings folder."""
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from clinpipe.paths import REPO_ROOT, latest_transfer
from pipelines.definitions import STUDIES, build_nightly_schedule, defs
from pipelines.execute import materialise

REPO = defs.get_repository_def()


def test_definitions_load():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert set(STUDIES) >= {"RS001", "GLOCART"}
    for s in STUDIES:
        assert f"{s}/raw_export" in keys
        assert {f"{s}/sdtm/{d}" for d in ("DM", "AE", "SUPPAE", "TS", "TA", "TE", "TV", "TI")} <= keys
        assert {f"{s}/adam/ADSL", f"{s}/adam/ADAE"} <= keys
        assert any(k.startswith(f"{s}/tlf/") for k in keys)
        assert {f"{s}/submission/package", f"{s}/changes/report"} <= keys
        # one group per layer; every asset of the study partitioned by its transfers
        groups = {graph.get(k).group_name for k in graph.get_all_asset_keys() if k.path[0] == s}
        assert groups == {f"{s}_{g}" for g in ("raw", "sdtm", "adam", "tlf", "changes", "submission")}
        parts = {graph.get(k).partitions_def.name for k in graph.get_all_asset_keys() if k.path[0] == s}
        assert parts == {f"{s}_transfers"}
        assert defs.resolve_job_def(f"{s}_refresh") and defs.resolve_job_def(f"{s}_submission_build")
        assert defs.resolve_sensor_def(f"{s}_new_transfer").default_status == dg.DefaultSensorStatus.RUNNING
        assert defs.resolve_schedule_def(f"{s}_nightly_refresh").cron_schedule == "0 2 * * *"
    # the ADaM assets sit downstream of the SDTM assets whose blocking checks gate them
    adsl = graph.get(dg.AssetKey(["RS001", "adam", "ADSL"]))
    assert dg.AssetKey(["RS001", "sdtm", "DM"]) in adsl.parent_keys
    assert adsl.code_version and graph.get(dg.AssetKey(["RS001", "sdtm", "DM"])).code_version
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert {("RS001/sdtm/DM", "conformance"), ("RS001/adam/ADSL", "adam_conformance"),
            ("RS001/submission/package", "manifest_verifies")} <= checks


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    """RS001's submission build of its newest sample transfer, in process, on one instance."""
    out = tmp_path_factory.mktemp("dagster_out")
    with dg.DagsterInstance.ephemeral() as instance:
        transfer = latest_transfer("RS001").name
        result = materialise("RS001", transfer, out_root=out, inst=instance, quiet=True)
        yield out, transfer, result, instance


def test_submission_build_materialises_every_layer(refreshed):
    out, transfer, result, _ = refreshed
    assert result.success
    mats = {m.asset_key.to_user_string(): m.metadata for m in _materialisations(result)}
    raw = mats["RS001/raw_export"]
    assert raw["records"].value > 100 and raw["transfer_date"].value == transfer
    dm = mats["RS001/sdtm/DM"]
    assert dm["dagster/row_count"].value == 36
    cols = {c.name: c.description for c in dm["dagster/column_schema"].schema.columns}
    assert cols["USUBJID"] == "Unique Subject Identifier"
    assert len(mats["RS001/sdtm/AE"]["xpt_sha256"].value) == 64
    assert mats["RS001/adam/ADSL"]["dagster/row_count"].value == 36
    assert mats["RS001/submission/package"]["files"].value > 50
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks[("RS001/adam/ADSL", "adam_conformance")] and checks[("RS001/sdtm/DM", "conformance")]
    assert checks[("RS001/submission/package", "manifest_verifies")]
    base = out / "RS001" / transfer
    assert (base / "sdtm" / "dm.xpt").is_file() and (base / "adam" / "adsl.xpt").is_file()
    assert (base / "submission" / "m5" / "datasets" / "rs001" / "tabulations" / "sdtm" / "define.xml").is_file()
    assert (out / "RS001" / "latest").resolve() == base.resolve()


def test_reports_are_assets_with_their_counts(refreshed):
    _out, _, result, _ = refreshed
    mats = {m.asset_key.to_user_string(): m.metadata for m in _materialisations(result)}
    rec = mats["RS001/reports/sdtm_reconciliation"]
    assert rec["unaccounted"].value == 0 and rec["raw_records"].value > 100
    assert Path(rec["report"].value).name == "sdtm_reconciliation.html" and Path(rec["report"].value).is_file()
    conf = mats["RS001/reports/sdtm_conformance"]
    assert conf["open_errors"].value == 0 and Path(conf["report"].value).is_file()
    assert mats["RS001/reports/adam_conformance"]["open_errors"].value == 0
    assert Path(mats["RS001/reports/dose_escalation"]["report"].value).name == "dose_escalation.html"


def test_sdtm_datasets_show_what_they_are_built_from():
    """Lineage in the asset graph: DM's RFSTDTC feeds every --DY, SE's elements every EPOCH,
    a SUPP-- its parent, SV every domain with visits; trial design only the raw transfer."""
    graph = defs.resolve_asset_graph()

    def parents(name, layer="sdtm"):
        return {k.to_user_string() for k in graph.get(dg.AssetKey(["RS001", layer, name])).parent_keys}

    assert parents("AE") == {"RS001/raw_export", "RS001/sdtm/DM", "RS001/sdtm/SE"}
    assert parents("SE") == {"RS001/raw_export", "RS001/sdtm/DM"}
    assert parents("DM") == parents("TS") == {"RS001/raw_export"}
    assert parents("SUPPAE") == {"RS001/raw_export", "RS001/sdtm/AE"}
    assert {"RS001/sdtm/LB", "RS001/sdtm/VS", "RS001/sdtm/PC", "RS001/sdtm/DM"} <= parents("SV")
    assert "RS001/sdtm/AE" not in parents("SV")     # AE records carry no visit
    assert "RS001/sdtm/DM" in parents("sdtm_conformance", "reports")
    assert graph.get(dg.AssetKey(["RS001", "sdtm", "AE"])).description.startswith("RS001 SDTM AE (Adverse Events;")


def _materialisations(result):
    return [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]


def test_one_sdtm_dataset_can_be_materialised_alone(refreshed, tmp_path):
    _out, transfer, _, instance = refreshed
    os.environ["CLINPIPE_OUT"] = str(tmp_path)
    try:
        res = dg.materialize([defs.resolve_assets_def(dg.AssetKey(["RS001", "sdtm", "AE"]))],
                             selection=[dg.AssetKey(["RS001", "sdtm", "AE"])], partition_key=transfer,
                             instance=instance, raise_on_error=False)
    finally:
        os.environ.pop("CLINPIPE_OUT")
    assert res.success
    assert [m.asset_key.path[-1] for m in _materialisations(res)] == ["AE"]


def test_wrongly_named_transfer_folder_fails_clearly(tmp_path, monkeypatch):
    """A partition whose folder holds an export of another date: one clear message, not retried."""
    raw = tmp_path / "raw"
    shutil.copytree(latest_transfer("RS001"), raw / "RS001" / "2030-01-01")
    monkeypatch.setenv("CLINPIPE_RAW", str(raw))
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("RS001_transfers", ["2030-01-01"])
        res = dg.materialize([defs.resolve_assets_def(dg.AssetKey(["RS001", "raw_export"]))],
                             partition_key="2030-01-01", instance=instance, raise_on_error=False)
    assert not res.success
    (failure,) = [e for e in res.all_events if e.is_step_failure]
    text = failure.step_failure_data.error.message
    assert "transfer date is 2025-05-27" in text and "2030-01-01" in text
    assert len([e for e in res.all_events if e.event_type_value == "STEP_RESTARTED"]) == 0


def test_sensor_adds_a_partition_and_a_run_per_new_transfer(tmp_path, monkeypatch):
    raw_root = tmp_path / "raw"
    src = latest_transfer("RS001")
    shutil.copytree(src, raw_root / "RS001" / src.name)
    monkeypatch.setenv("CLINPIPE_RAW", str(raw_root))
    sensor = defs.resolve_sensor_def("RS001_new_transfer")
    # called directly: the daemon applies the partition request before it checks the run
    # requests' partition keys, `evaluate_tick` would check them first
    with dg.DagsterInstance.ephemeral() as instance:
        result = sensor(dg.build_sensor_context(instance=instance))
        assert [(r.run_key, r.partition_key) for r in result.run_requests] == [(f"RS001-{src.name}", src.name)]
        (add,) = result.dynamic_partitions_requests
        assert add.partitions_def_name == "RS001_transfers" and list(add.partition_keys) == [src.name]
        instance.add_dynamic_partitions("RS001_transfers", [src.name])
        # nothing new: no run; a newer folder: a partition and one run for it
        assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
        shutil.copytree(src, raw_root / "RS001" / "2099-01-01")
        (req,) = sensor(dg.build_sensor_context(instance=instance)).run_requests
        assert (req.run_key, req.partition_key, req.tags["study"]) == ("RS001-2099-01-01", "2099-01-01", "RS001")


def test_nightly_schedule_runs_the_newest_transfer_in_its_time_zone(monkeypatch):
    monkeypatch.setenv("CLINPIPE_TIMEZONE", "Asia/Shanghai")
    job = defs.resolve_job_def("RS001_refresh")
    schedule = build_nightly_schedule("RS001", job)
    assert schedule.execution_timezone == "Asia/Shanghai" and schedule.cron_schedule == "0 2 * * *"
    with dg.instance_for_test() as instance:
        night = dt.datetime(2026, 12, 2, 2, 0)
        skip = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=night, repository_def=REPO))
        assert not skip.run_requests and "no RS001 transfer" in skip.skip_message
        instance.add_dynamic_partitions("RS001_transfers", ["2025-02-27", "2025-05-27"])
        (req,) = schedule.evaluate_tick(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=night, repository_def=REPO)).run_requests
        assert req.partition_key == "2025-05-27" and req.tags["trigger"] == "nightly"
        assert req.run_key == "RS001-nightly-2026-12-02-2025-05-27"


def test_dagster_yaml_keeps_storage_in_ignored_folder():
    text = (REPO_ROOT / "dagster.yaml").read_text()
    assert ".dagster_home/storage" in text
    assert ".dagster_home/" in (REPO_ROOT / ".gitignore").read_text()


def _dagster(args, tmp_path, **env):
    exe = Path(sys.executable).with_name("dagster")
    return subprocess.run([str(exe), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **env}, check=False)


def test_dagster_cli_validates_definitions(tmp_path):
    """What a user runs: `dagster definitions validate -m pipelines.definitions`."""
    res = _dagster(["definitions", "validate", "-m", "pipelines.definitions"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "All code locations passed validation" in res.stderr + res.stdout


def test_a_copied_mappings_folder_is_a_new_study_graph(tmp_path):
    """Adding a study is adding a folder under mappings/: no code change."""
    maps = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings", maps)
    shutil.copytree(maps / "RS001", maps / "RS002")
    cfg = maps / "RS002" / "study.yaml"
    cfg.write_text(cfg.read_text().replace("studyid: RS001", "studyid: RS002"))
    code = ("import json; from pipelines.definitions import defs; g = defs.resolve_asset_graph(); "
            "print(json.dumps(sorted({g.get(k).group_name for k in g.get_all_asset_keys() if k.path[0] == 'RS002'})))")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CLINPIPE_MAPPINGS": str(maps)}, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == [
        f"RS002_{g}" for g in ("adam", "changes", "raw", "sdtm", "submission", "tlf")]
    valid = _dagster(["definitions", "validate", "-m", "pipelines.definitions"], tmp_path, CLINPIPE_MAPPINGS=str(maps))
    assert valid.returncode == 0, valid.stderr[-2000:]


def test_a_cut_rebuilt_through_dagster_is_byte_identical(refreshed, sample_build):
    """The Dagster build of a transfer and the in-process build of the same transfer (another
    output root, another day) hold the same bytes in every dataset, output and ARD file."""
    import hashlib

    out, transfer, _, _ = refreshed

    def digests(base):
        return {p.relative_to(base).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for layer in ("sdtm", "adam", "tlf") for p in sorted((base / layer).rglob("*")) if p.is_file()}

    here, there = digests(out / "RS001" / transfer), digests(sample_build["RS001"].base)
    assert len(here) > 200
    assert here == there
