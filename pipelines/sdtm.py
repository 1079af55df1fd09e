"""Per-study SDTM assets: one Dagster asset per SDTM dataset, computed together from the raw
export asset (one mapping run), each with its own metadata. Thin wrapper over `sdtm.run`."""
import dagster as dg
import pandas as pd

from edc.forms import load_forms
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


def build_sdtm_assets(study: str) -> dg.AssetsDefinition:
    always, optional = expected_datasets(study)
    outs = {name.lower(): dg.AssetOut(key=[study, "sdtm", name], group_name=f"{study}_sdtm",
                                      is_required=name in always, kinds={"python", "xpt"},
                                      description=f"{study} SDTM {name}")
            for name in [*always, *optional]}

    checks = [dg.AssetCheckSpec(name="conformance", asset=dg.AssetKey([study, "sdtm", name]), blocking=True,
                                description="No open ERROR finding (schemas from SDTMIG 3.4/CT metadata and "
                                            "cross-dataset rules); WARNINGs pass with counts.")
              for name in always]

    @dg.multi_asset(name=f"{study}_sdtm", outs=outs, can_subset=False, check_specs=checks,
                    ins={"raw": dg.AssetIn(key=[study, "raw_export"])})
    def sdtm_datasets(context: dg.AssetExecutionContext, raw):
        from sdtm.run import write_sdtm
        from sdtm.validate.run import validate_run

        run = write_sdtm(raw, progress=context.log.info)
        validation, report = validate_run(run)
        specs = run.build.spec_hashes
        for name, df in run.datasets.items():
            info = run.written[name]
            yield dg.Output(df, output_name=name.lower(), metadata={
                "rows": info["rows"],
                "variables": dg.MetadataValue.text(", ".join(df.columns)),
                "xpt": dg.MetadataValue.path(str(info["xpt"])),
                "xpt_sha256": info["sha256"]["xpt"],
                "spec_sha256": dg.MetadataValue.json(specs),
                "input_sha256": dg.MetadataValue.json(dict(sorted(raw.file_hashes.items()))),
            })
        for name in always:
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
        asset_key=dg.AssetKey([study, "sdtm", dataset]), check_name="conformance",
        passed=errors.empty, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"open_errors": len(errors), "warnings": len(warnings),
                  "waived": int((mine["WAIVED"] == "Y").sum()),
                  "first_findings": dg.MetadataValue.md(first.to_markdown(index=False) if len(first) else "none"),
                  "report": dg.MetadataValue.path(str(report))})
