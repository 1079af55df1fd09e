"""Dagster wiring: definitions load, raw assets materialise, the sensor sees new transfers."""
import shutil

import dagster as dg
import pytest

from clinpipe.paths import REPO_ROOT, latest_transfer
from pipelines.definitions import STUDIES, defs


def test_definitions_load():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for s in STUDIES:
        assert f"{s}/raw_export" in keys
        assert {f"{s}/sdtm/{d}" for d in ("DM", "AE", "SUPPAE", "TS", "TA", "TE", "TV", "TI")} <= keys
        assert {f"{s}/adam/ADSL", f"{s}/adam/ADAE"} <= keys
        assert any(k.startswith(f"{s}/tlf/") for k in keys)
    # the ADaM assets sit downstream of the SDTM assets whose blocking checks gate them
    assert dg.AssetKey(["RS001", "sdtm", "DM"]) in graph.get(dg.AssetKey(["RS001", "adam", "ADSL"])).parent_keys
    for study in STUDIES:
        assert defs.resolve_job_def(f"{study}_refresh")
        assert defs.resolve_sensor_def(f"{study}_new_transfer")


@pytest.mark.parametrize("study", STUDIES)
def test_refresh_job_materialises_raw_and_sdtm(study, tmp_path, monkeypatch):
    monkeypatch.setenv("CLINPIPE_OUT", str(tmp_path))
    job = defs.resolve_job_def(f"{study}_refresh")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    (mat,) = result.asset_materializations_for_node(f"{study}__raw_export")
    meta = mat.metadata
    assert meta["records"].value > 100
    assert meta["transfer_date"].value == latest_transfer(study).name
    assert any(name.endswith(".csv") for name in meta["file_hashes"].value)
    raw = result.output_for_node(f"{study}__raw_export")
    assert raw.study == study and "AE" in raw.frames
    sdtm = {m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node(f"{study}_sdtm")}
    assert {"DM", "AE", "TS"} <= set(sdtm)
    assert sdtm["DM"]["rows"].value == len(raw.frames["DM"])
    assert "USUBJID" in sdtm["DM"]["variables"].value
    assert len(sdtm["AE"]["xpt_sha256"].value) == 64
    assert (tmp_path / study / "sdtm" / "dm.xpt").is_file()
    adam = {m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node(f"{study}_adam")}
    assert {"ADSL", "ADAE"} <= set(adam)
    assert adam["ADSL"]["rows"].value == sdtm["DM"]["rows"].value
    checks = {e.asset_key.path[-1]: e.passed for e in result.get_asset_check_evaluations()
              if e.check_name == "adam_conformance"}
    assert checks == {"ADSL": True, "ADAE": True}
    assert (tmp_path / study / "adam" / "adsl.xpt").is_file()
    # TLF: one asset per catalogue group, downstream of the ADaM checks
    from tlf.catalog import load_catalog
    catalog = load_catalog(study)
    tlf = {m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node(f"{study}_tlf")}
    assert set(tlf) == set(catalog.groups)
    assert sum(m["ard_rows"].value for m in tlf.values()) > 0
    for out in catalog.outputs:
        assert (tmp_path / study / "tlf" / f"{out.id}.rtf").is_file()


def test_sensor_requests_a_run_per_new_transfer(tmp_path, monkeypatch):
    raw_root = tmp_path / "raw"
    src = latest_transfer("RS001")
    shutil.copytree(src, raw_root / "RS001" / src.name)
    monkeypatch.setenv("CLINPIPE_RAW", str(raw_root))
    sensor = defs.resolve_sensor_def("RS001_new_transfer")
    with dg.DagsterInstance.ephemeral() as instance:
        ctx = dg.build_sensor_context(instance=instance, cursor=None)
        requests = list(sensor.evaluate_tick(ctx).run_requests)
        assert [r.run_key for r in requests] == [f"RS001-{src.name}"]
        cursor = src.name
        # nothing new: no run; a newer folder: one run for it
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor)
        assert not sensor.evaluate_tick(ctx).run_requests
        shutil.copytree(src, raw_root / "RS001" / "2099-01-01")
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor)
        (req,) = sensor.evaluate_tick(ctx).run_requests
        assert req.run_key == "RS001-2099-01-01"
        cfg = req.run_config["ops"]["RS001__raw_export"]["config"]
        assert cfg["transfer"].endswith("2099-01-01")


def test_dagster_yaml_keeps_storage_in_ignored_folder():
    text = (REPO_ROOT / "dagster.yaml").read_text()
    assert ".dagster_home/storage" in text
    assert ".dagster_home/" in (REPO_ROOT / ".gitignore").read_text()


def test_dagster_cli_validates_definitions(tmp_path):
    """What a user runs: `dagster definitions validate -m pipelines.definitions`."""
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("dagster")
    res = subprocess.run([str(exe), "definitions", "validate", "-m", "pipelines.definitions"],
                         cwd=REPO_ROOT, env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "All code locations passed validation" in res.stderr + res.stdout
