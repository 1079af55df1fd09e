"""The team instance (deploy/postgres/dagster.yaml) on a real PostgreSQL server: a project asset
materialises on it and its events land in PostgreSQL's tables."""
from __future__ import annotations

import shutil

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

    con = psycopg2.connect(**postgres_server.dsn(db=db, user=user, password=password))
    with con.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,))
        assert cur.fetchone()[0] > 5
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND asset_key = %s "
                    "AND dagster_event_type = 'ASSET_MATERIALIZATION'", (run_id, key.to_string()))
        assert cur.fetchone()[0] == 1
    con.close()


def test_both_instances_share_the_run_queue(tmp_path):
    """SQLite for one user and PostgreSQL for a team queue runs alike: one run per study."""
    local = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    team = yaml.safe_load(PG_YAML.read_text())
    assert local["concurrency"] == team["concurrency"]
    assert local["telemetry"] == team["telemetry"] == {"enabled": False}
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert queue.max_concurrent_runs == local["concurrency"]["runs"]["max_concurrent_runs"]
    assert queue.tag_concurrency_limits == [
        {"key": "study", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
