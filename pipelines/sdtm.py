"""Per-study SDTM assets: one Dagster asset per SDTM dataset and transfer partition, computed
together by one mapping run (`sdtm.run`) from the partition's transfer, each with its row
count, column schema and a blocking conformance check. Any subset can be asked for: the run
maps the whole transfer (domains depend on each other: DM for --DY, SE for EPOCH) and reports
the datasets asked for."""

import graphlib

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
from sdtm import metadata
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


def report_key(study: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([study, "reports", name])


def _algorithms(algorithm: str, options: dict) -> set[str]:
    """The algorithm of a variable and those of its if/then/else branches (spec mappings)."""
    from sdtm.algorithms import ALGORITHMS

    names = {algorithm}
    for branch in ("then", "else") if algorithm == "if" else ():
        sub = options.get(branch)
        for name in (n for n in sub or {} if n in ALGORITHMS):
            names |= _algorithms(name, sub)
    return names


def dataset_deps(study: str) -> dict[str, set[str]]:
    """Which SDTM datasets each one is built from, beside the raw transfer: DM's RFSTDTC for
    every --DY, SE's elements for every EPOCH, the parent domain for a SUPP--, and for SV every
    domain with visits (SV is the visits the data show)."""
    specs = load_specs(study, load_forms(study))
    deps: dict[str, set[str]] = {"SE": {"DM"}, "SV": {"DM"}}
    for domain, group in specs.items():
        used = set()
        for spec in group:
            for var in [*spec.variables.values(), *(q.var for q in spec.supp)]:
                used |= _algorithms(var.algorithm, var.options)
            if "VISITNUM" in spec.variables:
                deps["SV"].add(domain)
        mine = deps.setdefault(domain, set())
        if "study_day" in used and domain != "DM":
            mine.add("DM")
        if "epoch" in used:
            mine.add("SE")
        deps[f"SUPP{domain}"] = {domain}
    return deps


def build_sdtm_assets(study: str) -> dg.AssetsDefinition:
    always, optional = expected_datasets(study)
    version = code_version(study, "sdtm")
    built_from = dataset_deps(study)
    names = [*always, *optional]
    order = list(graphlib.TopologicalSorter(
        {n: sorted(d for d in built_from.get(n, ()) if d in names) for n in sorted(names)}).static_order())
    raw = dg.AssetKey([study, "raw_export"])
    specs = [dg.AssetSpec(sdtm_key(study, name), group_name=f"{study}_sdtm", skippable=name not in always,
                          kinds={"python", "xpt", "parquet"}, code_version=version,
                          deps=[raw, *(sdtm_key(study, d) for d in sorted(built_from.get(name, ()))
                                       if d in names)],
                          owners=["team:sdtm-programming"],
                          description=f"{study} SDTM {name} ({metadata.domain(name).label}; "
                                      f"SDTMIG 3.4): XPT v5 + parquet")
             for name in names]
    specs += [
        dg.AssetSpec(report_key(study, "sdtm_reconciliation"), group_name=f"{study}_sdtm",
                     kinds={"html", "xlsx", "csv"}, code_version=version, deps=[raw],
                     owners=["team:data-management"],
                     description=f"{study} raw -> SDTM reconciliation: every raw record mapped or "
                                 "rejected with its reason, field coverage, mapping issues and the "
                                 "reader's findings (reports/sdtm_reconciliation.*)"),
        dg.AssetSpec(report_key(study, "sdtm_conformance"), group_name=f"{study}_sdtm",
                     kinds={"html", "xlsx", "csv", "parquet"}, code_version=version,
                     deps=[sdtm_key(study, n) for n in always], owners=["team:sdtm-programming"],
                     description=f"{study} SDTM conformance findings and the data queries for sites "
                                 "(reports/conformance.*, conformance_queries.*)"),
    ]
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
        for name in order:      # Dagster takes a multi-asset's outputs in dependency order
            info = run.written.get(name)
            if info is None or sdtm_key(study, name) not in wanted:
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
        reports = run.folder.parent / "reports"
        if report_key(study, "sdtm_reconciliation") in wanted:
            rec = run.build.reconciliation
            yield dg.MaterializeResult(asset_key=report_key(study, "sdtm_reconciliation"), metadata={
                "report": dg.MetadataValue.path(str(reports / "sdtm_reconciliation.html")),
                "raw_records": int(rec["RECORDS"].sum()), "rejected": len(run.build.rejections),
                "unaccounted": int(rec["UNACCOUNTED"].sum()), "mapping_issues": len(run.build.issues),
                "raw_findings": len(run.raw.findings), "transfer": context.partition_key})
        if report_key(study, "sdtm_conformance") in wanted:
            yield dg.MaterializeResult(asset_key=report_key(study, "sdtm_conformance"), metadata={
                "report": dg.MetadataValue.path(str(report)),
                "queries": dg.MetadataValue.path(str(reports / "conformance_queries.csv")),
                "open_errors": len(validation.open("ERROR")),
                "warnings": len(validation.open("WARNING")), "transfer": context.partition_key})

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
