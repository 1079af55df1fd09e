"""Per-study raw-export assets (one partition per transfer) and the sensor that notices a new
transfer folder, adds its partition and asks for its refresh.

Thin wrappers: reading lives in `edc.read`, the summary report in `clinpipe.raw_summary`.
"""

import dagster as dg

from clinpipe.paths import raw_data_dir, raw_transfers, transfer_id
from pipelines.common import RETRY, code_version, transfer_folder, transfers, user_errors


def build_raw_asset(study: str) -> dg.AssetsDefinition:
    @dg.asset(
        name="raw_export", key_prefix=[study], group_name=f"{study}_raw", kinds={"python", "csv"},
        partitions_def=transfers(study), retry_policy=RETRY, owners=["team:data-management"],
        code_version=code_version(study, ""),
        description=f"{study} EDC transfer: every delivered format read and compared, the raw "
                    "summary report (reports/raw_summary.*) written.",
    )
    def raw_export(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from clinpipe.raw_summary import summarise_study

        key = context.partition_key
        with user_errors():
            folder = transfer_folder(study, key)
            summary = summarise_study(study, folder, progress=context.log.info)
            raw = summary.transfer
            if transfer_id(raw.transfer_date) != key:
                raise dg.Failure(
                    description=f"{folder}: the export's transfer date is {raw.transfer_date}, the "
                                f"folder says {key} -> name the transfer folder by its transfer date",
                    allow_retries=False)
        return dg.MaterializeResult(metadata={
            "transfer": dg.MetadataValue.path(str(folder)),
            "transfer_date": str(raw.transfer_date),
            "format": raw.format,
            "records": int(sum(len(f) for f in raw.frames.values())),
            "reader_findings": len(raw.findings),
            "rows_per_form": dg.MetadataValue.md(raw.summary().to_markdown(index=False)),
            "input_sha256": dg.MetadataValue.json(dict(sorted(raw.file_hashes.items()))),
            "report": dg.MetadataValue.path(str(summary.page)),
        })

    return raw_export


def transfer_folders(study: str) -> list[str]:
    return [p.name for p in raw_transfers(study)]


def build_transfer_sensor(study: str, job) -> dg.SensorDefinition:
    @dg.sensor(name=f"{study}_new_transfer", job=job, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Adds a partition for every new transfer folder in data/raw/{study}/ "
                           "and starts its refresh.")
    def new_transfer(context: dg.SensorEvaluationContext):
        known = set(context.instance.get_dynamic_partitions(transfers(study).name))
        new = [name for name in transfer_folders(study) if name not in known]
        if not new:
            return dg.SkipReason(f"no new transfer in {raw_data_dir() / study}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"{study}-{name}", partition_key=name,
                                        tags={"study": study, "transfer": name}) for name in new],
            dynamic_partitions_requests=[transfers(study).build_add_request(new)])

    return new_transfer
