"""Per-study SDTM assets: one Dagster asset per SDTM dataset and transfer partition, computed
together by one mapping run (`sdtm.run`) from the partition's transfer, each with its row
count, column schema and a blocking conformance check. Any subset can be asked for: the run
maps the whole transfer (domains depend on each other: DM for --DY, SE for EPOCH) and reports
the datasets asked for."""

import dagster as dg
import pandas as pd

from edc.forms import load_forms
from pipelines.common import (
    RETRY,
    code_version,
    dataset_metadata,
    first_format,
    transfer_folder,
    transfers,
    user_errors,
)
from sdtm.spec import load_specs

TRIAL_DESIGN = ("TA", "TE", "TI", "TS", "TV")


def expected_datasets(study: str) -> tuple[list[str], list[str]]:
    """(always produced, produced when the data call for them): mapped domains, SE and trial
    design always; SUPP-- for every mapped domain (text over 200 characters may need one) and SV
    (only when some domain carries visits)."""
    specs = load_specs(study, load_forms(study))
    domains = sorted(specs)
    always = sorted([*domains, *TRIAL_DESIGN, "SE"])
    return always, [f"SUPP{d}" for d in domains if d != "DM"] + ["SUPPDM", "SV"]


def sdtm_key(study: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([study, "sdtm", name])


def build_sdtm_assets(study: str) -> dg.AssetsDefinition:
    always, optional = expected_datasets(study)
    version = code_version(study, "sdtm")
    specs = [dg.AssetSpec(sdtm_key(study, name), group_name=f"{study}_sdtm", skippable=name not in always,
                          kinds={"python", "xpt", "parquet"}, code_version=version,
                          deps=[dg.AssetKey([study, "raw_export"])], owners=["team:sdtm-programming"],
                          description=f"{study} SDTM {name} (SDTMIG 3.4): XPT v5 + parquet")
             for name in [*always, *optional]]
    checks = [dg.AssetCheckSpec(name="conformance", asset=sdtm_key(study, name), blocking=True,
                                description="No open ERROR finding (schemas from SDTMIG 3.4/CT metadata and "
                                            "cross-dataset rules); WARNINGs pass with counts.")
              for name in always]

    @dg.multi_asset(name=f"{study}_sdtm", specs=specs, check_specs=checks, can_subset=True,
                    partitions_def=transfers(study), retry_policy=RETRY)
    def sdtm_datasets(context: dg.AssetExecutionContext):
        from sdtm.run import run_sdtm
        from sdtm.validate.run import validate_run

        with user_errors():
            run = run_sdtm(study, first_format(transfer_folder(study, context.partition_key)),
                           progress=context.log.info)
            validation, report = validate_run(run)
        wanted = context.selected_asset_keys
        for name, info in run.written.items():
            if sdtm_key(study, name) not in wanted:
                continue
            yield dg.MaterializeResult(asset_key=sdtm_key(study, name), metadata={
                **dataset_metadata(info["parquet"], info["rows"]),
                "xpt": dg.MetadataValue.path(str(info["xpt"])),
                "xpt_sha256": info["sha256"]["xpt"],
                "transfer": context.partition_key,
                "spec_sha256": dg.MetadataValue.json(run.build.spec_hashes),
                "input_sha256": dg.MetadataValue.json(dict(sorted(run.raw.file_hashes.items()))),
            })
        for name in always:
            if sdtm_key(study, name) in wanted:
                yield conformance_check(study, name, validation, report)

    return sdtm_datasets


def conformance_check(study: str, dataset: str, validation, report) -> dg.AssetCheckResult:
    """ERROR findings fail the blocking check (downstream does not run on bad data);
    WARNINGs pass, reported as counts and the first examples."""
    f = validation.findings
    mine = f[(f["DATASET"] == dataset) | f["DATASET"].eq(f"SUPP{dataset}")]
    errors = validation.open("ERROR")
    errors = errors[errors.index.isin(mine.index)]
    warnings = validation.open("WARNING")
    warnings = warnings[warnings.index.isin(mine.index)]
    first = pd.concat([errors, warnings]).head(5)
    return dg.AssetCheckResult(
        asset_key=sdtm_key(study, dataset), check_name="conformance",
        passed=errors.empty, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"open_errors": len(errors), "warnings": len(warnings),
                  "waived": int((mine["WAIVED"] == "Y").sum()),
                  "first_findings": dg.MetadataValue.md(first.to_markdown(index=False) if len(first) else "none"),
                  "report": dg.MetadataValue.path(str(report))})
