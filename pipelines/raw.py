"""Per-study raw-export assets and the sensor that notices a new transfer folder.

Thin wrappers: reading lives in `edc.read`; this module only names assets, passes config and
attaches metadata a programmer looks at in the Dagster UI.
"""

from pathlib import Path

import dagster as dg

from clinpipe.paths import latest_transfer, raw_data_dir, transfer_formats


class RawExportConfig(dg.Config):
    transfer: str = ""   # transfer folder; empty = the newest under data/raw/<STUDY>/
    format: str = "auto"


def resolve_transfer(study: str, transfer: str = "") -> Path:
    folder = Path(transfer) if transfer else latest_transfer(study)
    return next(iter(transfer_formats(folder).values()))


def build_raw_asset(study: str) -> dg.AssetsDefinition:
    @dg.asset(
        name="raw_export",
        key_prefix=[study],
        group_name=f"{study}_raw",
        kinds={"python", "csv"},
        description=f"{study} EDC transfer read into one frame per form (CSV, ODM or SAS).",
    )
    def raw_export(context: dg.AssetExecutionContext, config: RawExportConfig):
        from edc.read import read_transfer

        folder = resolve_transfer(study, config.transfer)
        raw = read_transfer(folder, study=study, format=config.format)
        summary = raw.summary()
        context.add_output_metadata({
            "transfer": dg.MetadataValue.path(str(folder)),
            "transfer_date": str(raw.transfer_date),
            "format": raw.format,
            "records": int(sum(len(f) for f in raw.frames.values())),
            "reader_findings": len(raw.findings),
            "rows_per_form": dg.MetadataValue.md(summary.to_markdown(index=False)),
            "file_hashes": dg.MetadataValue.json(dict(sorted(raw.file_hashes.items()))),
        })
        return raw

    return raw_export


def build_transfer_sensor(study: str, job) -> dg.SensorDefinition:
    @dg.sensor(name=f"{study}_new_transfer", job=job, minimum_interval_seconds=60,
               description=f"Starts a run when a new transfer folder appears in data/raw/{study}/.")
    def new_transfer(context: dg.SensorEvaluationContext):
        base = raw_data_dir() / study
        folders = sorted(p.name for p in base.glob("*") if p.is_dir() and not p.name.startswith("."))
        new = [f for f in folders if f > (context.cursor or "")]
        for name in new:
            yield dg.RunRequest(
                run_key=f"{study}-{name}",
                run_config={"ops": {f"{study}__raw_export": {"config": {"transfer": str(base / name)}}}},
                tags={"study": study, "transfer": name},
            )
        if new:
            context.update_cursor(new[-1])

    return new_transfer
