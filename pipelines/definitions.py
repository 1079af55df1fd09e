"""Dagster definitions for both studies: `dagster dev -m pipelines.definitions`."""
from __future__ import annotations

import dagster as dg

from pipelines.adam import build_adam_assets
from pipelines.raw import build_raw_asset, build_transfer_sensor
from pipelines.sdtm import build_sdtm_assets
from pipelines.tlf import build_tlf_assets

STUDIES = ("RS001", "GLOCART")


def build_study(study: str) -> dg.Definitions:
    raw = build_raw_asset(study)
    sdtm = build_sdtm_assets(study)
    adam = build_adam_assets(study)
    tlf = build_tlf_assets(study)
    groups = [f"{study}_raw", f"{study}_sdtm", f"{study}_adam"] + ([f"{study}_tlf"] if tlf else [])
    job = dg.define_asset_job(f"{study}_refresh", selection=dg.AssetSelection.groups(*groups),
                              description=f"Read {study}'s newest transfer and rebuild downstream layers.")
    assets = [raw, sdtm, adam] + ([tlf] if tlf else [])
    return dg.Definitions(assets=assets, jobs=[job], sensors=[build_transfer_sensor(study, job)])


defs = dg.Definitions.merge(*(build_study(s) for s in STUDIES))
