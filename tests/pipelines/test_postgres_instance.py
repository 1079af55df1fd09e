"""The team instance (deploy/postgres/dagster.yaml) on a real PostgreSQL server: a project asset
materialises on it and its events land in PostgreSQL's tables."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import dagster as dg
import psycopg2
import yaml

from clinpipe.paths import REPO_ROOT, latest_transfer
from pipelines.raw import build_raw_asset

PG_YAML = REPO_ROOT / "deploy" / "postgres" / "dagster.yaml"


def _create_dagster_db(server, user: str, password: str, db: str) -> None:
    """What deploy/README.md tells an administrator to run: a login role owning one database."""
    con = psycopg2.connect(**server.dsn())
    con.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
    with con.cursor() as cur:
        cur.execute(f"CREATE ROLE {user} LOGIN PASSWORD %s", (password,))
        cur.execute(f"CREATE DATABASE {db} OWNER {user}")
    con.close()


def _materialize_raw(instance: dg.DagsterInstance, study: str) -> dg.ExecuteInProcessResult:
    """Works whether the raw asset takes the transfer as config or as a dynamic partition."""
    asset = build_raw_asset(study)
    transfer = latest_transfer(study)
    if asset.partitions_def is not None:
        instance.add_dynamic_partitions(asset.partitions_def.name, [transfer.name])
        return dg.materialize([asset], instance=instance, partition_key=transfer.name)
    run_config = {"ops": {asset.op.name: {"config": {"transfer": str(transfer)}}}}
    return dg.materialize([asset], instance=instance, run_config=run_config)


def test_materialisation_on_postgres_instance(postgres_server, tmp_path, monkeypatch):
    user, password, db = "dagster", "dagster-test-password", "dagster"
    _create_dagster_db(postgres_server, user, password, db)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PG_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", postgres_server.host)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(postgres_server.port))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", user)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", password)
    monkeypatch.setenv("DAGSTER_PG_DB", db)
    monkeypatch.setenv("CLINPIPE_OUT", str(tmp_path / "out"))

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        result = _materialize_raw(instance, "RS001")
        assert result.success
        run_id = result.run_id

    # a second instance (another user's UI, the daemon) reads the materialisation back
    key = dg.AssetKey(["RS001", "raw_export"])
    with dg.DagsterInstance.from_config(str(home)) as other:
        event = other.get_latest_materialization_event(key)
        assert event is not None and event.run_id == run_id
        meta = event.asset_materialization.metadata
        assert meta["records"].value > 100
        assert meta["transfer_date"].value == latest_transfer("RS001").name
        assert other.get_run_by_id(run_id).is_success
        if build_raw_asset("RS001").partitions_def is not None:
            assert event.asset_materialization.partition == latest_transfer("RS001").name

    # what deploy/README.md tells an administrator to check
    info = subprocess.run([str(Path(sys.executable).with_name("dagster")), "instance", "info"],
                          cwd=home, capture_output=True, text=True, timeout=120, check=False)
    assert info.returncode == 0, info.stderr[-2000:]
    assert "run_storage: PostgresRunStorage" in info.stdout
    assert "event_log_storage: PostgresEventLogStorage" in info.stdout

    con = psycopg2.connect(**postgres_server.dsn(db=db, user=user, password=password))
    with con.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,))
        assert cur.fetchone()[0] > 5
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND asset_key = %s "
                    "AND dagster_event_type = 'ASSET_MATERIALIZATION'", (run_id, key.to_string()))
        assert cur.fetchone()[0] == 1
        if build_raw_asset("RS001").partitions_def is not None:
            cur.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = %s",
                        ("RS001_transfers",))
            assert cur.fetchall() == [(latest_transfer("RS001").name,)]
    con.close()


def test_both_instances_share_the_run_queue():
    """SQLite for one user and PostgreSQL for a team queue runs alike."""
    local = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    team = yaml.safe_load(PG_YAML.read_text())
    assert local["concurrency"] == team["concurrency"]
    assert local["telemetry"] == team["telemetry"] == {"enabled": False}


def test_run_queue_starts_one_run_per_study(tmp_path, monkeypatch):
    """The queue daemon's own dequeue step on dagster.yaml's limits: of five queued runs it
    starts the oldest of each study, and the next of a study once that one has finished."""
    # Dagster's test launcher records launches instead of starting processes; the rest of the
    # instance is dagster.yaml as committed
    from dagster._core.remote_origin import (
        RegisteredCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.test_utils import create_run_for_test
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
        QueuedRunCoordinatorDaemon,
    )

    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    config["run_launcher"] = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    # dagster.yaml's storage paths are relative: keep them inside tmp
    monkeypatch.chdir(home)
    repo = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("pipelines.definitions"),
                                  "__repository__")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == config["concurrency"]["runs"]["max_concurrent_runs"]
        names = {}
        for name, study in (("rs1", "RS001"), ("rs2", "RS001"), ("gc1", "GLOCART"),
                            ("gc2", "GLOCART"), ("rs3", "RS001")):
            run = create_run_for_test(instance, job_name=f"{study}_refresh",
                                      status=dg.DagsterRunStatus.QUEUED, tags={"study": study},
                                      remote_job_origin=RemoteJobOrigin(repo, f"{study}_refresh"))
            names[run.run_id] = name
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        workspace = mock.MagicMock(instance=instance)

        def dequeue() -> list[str]:
            before = {r.run_id for r in instance.run_launcher.queue()}
            list(daemon.run_iteration(workspace))
            return sorted(names[r.run_id] for r in instance.run_launcher.queue()
                          if r.run_id not in before)

        assert dequeue() == ["gc1", "rs1"]
        assert dequeue() == []  # both studies busy
        rs1 = next(i for i, n in names.items() if n == "rs1")
        instance.report_run_failed(instance.get_run_by_id(rs1))
        assert dequeue() == ["rs2"]
