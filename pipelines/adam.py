"""Per-study ADaM assets: one Dagster asset per ADaM dataset (group `<STUDY>_adam`), built
together by one `adam.run` from the SDTM the study's SDTM assets wrote, downstream of their
blocking conformance checks, each with its own blocking ADaM conformance check."""
import dagster as dg
import pandas as pd

from adam.metadata import spec_paths
from adam.run import BUILDERS
from clinpipe.paths import mappings_dir
from pipelines.sdtm import expected_datasets

ALWAYS = ("ADSL", "ADAE")


def expected_adam(study: str) -> list[str]:
    """The ADaM datasets with a spec for the study, in build order."""
    return [n for n in BUILDERS if spec_paths(n, study, mappings_dir())]


def build_adam_assets(study: str) -> dg.AssetsDefinition:
    names = expected_adam(study)
    outs = {n.lower(): dg.AssetOut(key=[study, "adam", n], group_name=f"{study}_adam", is_required=n in ALWAYS,
                                   kinds={"python", "xpt"}, description=f"{study} ADaM {n}")
            for n in names}
    checks = [dg.AssetCheckSpec(name="adam_conformance", asset=dg.AssetKey([study, "adam", n]), blocking=True,
                                description="No open ERROR finding (schemas from the ADaM dataset specs, "
                                            "rules AD001-AD007); WARNINGs pass with counts.")
              for n in ALWAYS]
    sdtm_always, _ = expected_datasets(study)

    @dg.multi_asset(name=f"{study}_adam", outs=outs, can_subset=False, check_specs=checks,
                    deps=[dg.AssetKey([study, "sdtm", d]) for d in sdtm_always])
    def adam_datasets(context: dg.AssetExecutionContext):
        from adam.run import run_adam
        from clinpipe.paths import study_out

        run = run_adam(study, study_out(study, "sdtm"), progress=context.log.info)
        for name, df in run.datasets.items():
            info = run.written[name]
            meta = {"rows": info["rows"], "variables": dg.MetadataValue.text(", ".join(df.columns)),
                    "xpt": dg.MetadataValue.path(str(info["xpt"])), "xpt_sha256": info["sha256"]["xpt"],
                    "data_cutoff": run.cutoff.isoformat()}
            if "PARAMCD" in df.columns:
                meta["parameters"] = dg.MetadataValue.text(", ".join(sorted(df.PARAMCD.unique())))
            yield dg.Output(df, output_name=name.lower(), metadata=meta)
        for name in ALWAYS:
            yield adam_check(study, name, run.validation)

    return adam_datasets


def adam_check(study: str, dataset: str, validation) -> dg.AssetCheckResult:
    f = validation.findings
    mine = f[f.DATASET == dataset]
    errors, warnings = mine[mine.SEVERITY == "ERROR"], mine[mine.SEVERITY == "WARNING"]
    first = pd.concat([errors, warnings]).head(5)
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey([study, "adam", dataset]), check_name="adam_conformance", passed=errors.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"open_errors": len(errors), "warnings": len(warnings),
                  "first_findings": dg.MetadataValue.md(first.to_markdown(index=False) if len(first) else "none")})
