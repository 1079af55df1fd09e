"""Dagster definitions for every configured study: `dagster dev -m pipelines.definitions`.

Built from configuration: each folder under mappings/ holding a study.yaml is a study, and
gets raw -> SDTM -> ADaM -> TLF -> submission/changes assets (one group per layer), one
partition per EDC transfer, its jobs, the new-transfer sensor and a nightly schedule. Adding
a study is adding its folder; no code changes.

Jobs are per study because a Dagster run materialises one partitions definition, and each
study has its own transfers:
- `<STUDY>_refresh`: raw -> TLF and the change report, for one transfer (the sensor's and the
  nightly schedule's job);
- `<STUDY>_submission_build`: the same plus the eCTD submission package, for one cut.
The nightly schedules run at CLINPIPE_NIGHTLY_CRON (default 02:00) in CLINPIPE_TIMEZONE
(default UTC) on each study's newest transfer.
"""
from __future__ import annotations

import os

import dagster as dg

from clinpipe.config import available_studies
from pipelines.adam import build_adam_assets
from pipelines.common import transfers
from pipelines.raw import build_raw_asset, build_transfer_sensor
from pipelines.sdtm import build_sdtm_assets
from pipelines.submission import build_changes_asset, build_package_asset
from pipelines.tlf import build_tlf_assets

LAYERS = ("raw", "sdtm", "adam", "tlf", "changes")


def nightly_cron() -> str:
    return os.environ.get("CLINPIPE_NIGHTLY_CRON", "0 2 * * *")


def timezone() -> str:
    return os.environ.get("CLINPIPE_TIMEZONE", "UTC")


def build_nightly_schedule(study: str, job) -> dg.ScheduleDefinition:
    @dg.schedule(name=f"{study}_nightly_refresh", job=job, cron_schedule=nightly_cron(),
                 execution_timezone=timezone(), default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Every night: rebuild {study}'s newest transfer (raw -> TLF, change report).")
    def nightly(context: dg.ScheduleEvaluationContext):
        keys = sorted(context.instance.get_dynamic_partitions(transfers(study).name))
        if not keys:
            return dg.SkipReason(f"no {study} transfer known yet (the new-transfer sensor adds them)")
        night = context.scheduled_execution_time.strftime("%Y-%m-%d")
        return dg.RunRequest(run_key=f"{study}-nightly-{night}-{keys[-1]}", partition_key=keys[-1],
                             tags={"study": study, "transfer": keys[-1], "trigger": "nightly"})

    return nightly


def build_study(study: str) -> dg.Definitions:
    tlf = build_tlf_assets(study)
    assets = [build_raw_asset(study), build_sdtm_assets(study), build_adam_assets(study),
              *([tlf] if tlf else []), build_changes_asset(study), build_package_asset(study)]
    groups = [f"{study}_{layer}" for layer in LAYERS if layer != "tlf" or tlf]
    refresh = dg.define_asset_job(
        f"{study}_refresh", selection=dg.AssetSelection.groups(*groups), tags={"study": study},
        description=f"Rebuild one {study} transfer: raw -> SDTM -> ADaM -> TLF and the change report.")
    submission = dg.define_asset_job(
        f"{study}_submission_build", tags={"study": study},
        selection=dg.AssetSelection.groups(*groups, f"{study}_submission"),
        description=f"Build one {study} cut through to the eCTD submission package (Define-XML 2.1).")
    return dg.Definitions(assets=assets, jobs=[refresh, submission],
                          sensors=[build_transfer_sensor(study, refresh)],
                          schedules=[build_nightly_schedule(study, refresh)])


STUDIES = tuple(available_studies())

# The multiprocess executor runs independent steps of a run side by side (two cores); the run
# queue in dagster.yaml lets two studies' runs go at once, one run per study.
defs = dg.Definitions.merge(
    *(build_study(s) for s in STUDIES),
    dg.Definitions(executor=dg.multiprocess_executor.configured({"max_concurrent": 2})))
