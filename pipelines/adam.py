"""Per-study ADaM assets: one Dagster asset per ADaM dataset and transfer partition (group
`<STUDY>_adam`), built together by one `adam.run` from the SDTM the partition's SDTM assets
wrote, downstream of their blocking conformance checks, each with a blocking ADaM check."""

import dagster as dg
import pandas as pd

from adam.metadata import spec_paths
from adam.run import BUILDERS
from clinpipe.config import load_study
from clinpipe.paths import mappings_dir, study_out
from pipelines.common import RETRY, code_version, dataset_metadata, transfers, user_errors
from pipelines.sdtm import expected_datasets, report_key, sdtm_key

ALWAYS = ("ADSL", "ADAE")


def expected_adam(study: str) -> list[str]:
    """The ADaM datasets with a spec for the study, in build order."""
    return [n for n in BUILDERS if spec_paths(n, study, mappings_dir())]


def adam_key(study: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([study, "adam", name])


def build_adam_assets(study: str) -> dg.AssetsDefinition:
    sdtm_always, _ = expected_datasets(study)
    version = code_version(study, "adam")
    specs = [dg.AssetSpec(adam_key(study, n), group_name=f"{study}_adam", skippable=n not in ALWAYS,
                          kinds={"python", "xpt", "parquet"}, code_version=version,
                          deps=[sdtm_key(study, d) for d in sdtm_always], owners=["team:adam-programming"],
                          description=f"{study} ADaM {n} (ADaMIG 1.3): XPT v5 + parquet")
             for n in expected_adam(study)]
    adam_always = [adam_key(study, n) for n in ALWAYS]
    specs.append(dg.AssetSpec(
        report_key(study, "adam_conformance"), group_name=f"{study}_adam", code_version=version,
        kinds={"html", "xlsx", "csv"}, deps=[adam_key(study, n) for n in expected_adam(study)],
        owners=["team:adam-programming"],
        description=f"{study} ADaM conformance findings (reports/adam_conformance.*)"))
    escalates = getattr(load_study(study), "escalation", None) is not None
    if escalates:
        specs.append(dg.AssetSpec(
            report_key(study, "dose_escalation"), group_name=f"{study}_adam", code_version=version,
            kinds={"html", "xlsx", "csv"}, deps=adam_always, skippable=True, owners=["team:biostatistics"],
            description=f"{study} 3+3 dose escalation: DLT-evaluable n, DLTs and the decision per "
                        "dose level, the MTD, and where the investigator's DLT call and the "
                        "protocol's rules disagree (reports/dose_escalation.*)"))
    checks = [dg.AssetCheckSpec(name="adam_conformance", asset=adam_key(study, n), blocking=True,
                                description="No open ERROR finding (schemas from the ADaM dataset specs, "
                                            "rules AD001-AD007); WARNINGs pass with counts.")
              for n in ALWAYS]

    @dg.multi_asset(name=f"{study}_adam", specs=specs, check_specs=checks, can_subset=True,
                    partitions_def=transfers(study), retry_policy=RETRY)
    def adam_datasets(context: dg.AssetExecutionContext):
        from adam.run import run_adam

        with user_errors():
            run = run_adam(study, study_out(study, "sdtm", transfer=context.partition_key),
                           progress=context.log.info)
        wanted = context.selected_asset_keys
        for name, df in run.datasets.items():
            if adam_key(study, name) not in wanted:
                continue
            info = run.written[name]
            meta = {**dataset_metadata(info["parquet"], info["rows"]),
                    "xpt": dg.MetadataValue.path(str(info["xpt"])), "xpt_sha256": info["sha256"]["xpt"],
                    "data_cutoff": run.cutoff.isoformat(), "transfer": context.partition_key}
            if "PARAMCD" in df.columns:
                meta["parameters"] = dg.MetadataValue.text(", ".join(sorted(df.PARAMCD.unique())))
            yield dg.MaterializeResult(asset_key=adam_key(study, name), metadata=meta)
        for name in ALWAYS:
            if adam_key(study, name) in wanted:
                yield adam_check(study, name, run.validation)
        reports = run.folder.parent / "reports"
        if report_key(study, "adam_conformance") in wanted:
            yield dg.MaterializeResult(asset_key=report_key(study, "adam_conformance"), metadata={
                "report": dg.MetadataValue.path(str(reports / "adam_conformance.html")),
                "open_errors": len(run.validation.open("ERROR")),
                "warnings": len(run.validation.open("WARNING")), "transfer": context.partition_key})
        page = reports / "dose_escalation.html"
        if report_key(study, "dose_escalation") in wanted and page.is_file():
            yield dg.MaterializeResult(asset_key=report_key(study, "dose_escalation"), metadata={
                "report": dg.MetadataValue.path(str(page)), "transfer": context.partition_key,
                "data_cutoff": run.cutoff.isoformat()})

    return adam_datasets


def adam_check(study: str, dataset: str, validation) -> dg.AssetCheckResult:
    f = validation.findings
    mine = f[f.DATASET == dataset]
    errors, warnings = mine[mine.SEVERITY == "ERROR"], mine[mine.SEVERITY == "WARNING"]
    first = pd.concat([errors, warnings]).head(5)
    return dg.AssetCheckResult(
        asset_key=adam_key(study, dataset), check_name="adam_conformance", passed=errors.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"open_errors": len(errors), "warnings": len(warnings),
                  "first_findings": dg.MetadataValue.md(first.to_markdown(index=False) if len(first) else "none")})
