"""Per-study submission and change-report assets of a transfer partition.

`<STUDY>/submission/package`: the eCTD module 5 package with Define-XML 2.1 for SDTM and ADaM
(`submission.package`), checked against its manifest; building it moves `out/<STUDY>/latest`.
`<STUDY>/changes/report`: what changed since the previous transfer built (`changes`), also as
metadata on the newest partition."""

import dagster as dg

from clinpipe.paths import build_dir, point_latest
from pipelines.adam import ALWAYS, adam_key
from pipelines.common import RETRY, code_version, transfers, user_errors
from pipelines.sdtm import expected_datasets, sdtm_key
from pipelines.tlf import tlf_key
from tlf.catalog import catalog_dir, load_catalog


def _build_deps(study: str) -> list[dg.AssetKey]:
    """What a finished build is: the checked SDTM and ADaM datasets and every TLF group."""
    tlf = ([tlf_key(study, g) for g in load_catalog(study).groups]
           if (catalog_dir(study) / "endpoints.yaml").is_file() else [])
    return [*(sdtm_key(study, d) for d in expected_datasets(study)[0]),
            *(adam_key(study, d) for d in ALWAYS), *tlf]


def build_package_asset(study: str) -> dg.AssetsDefinition:
    deps = _build_deps(study)
    key = dg.AssetKey([study, "submission", "package"])

    @dg.asset(key=key, group_name=f"{study}_submission", deps=deps, partitions_def=transfers(study),
              kinds={"python", "xml"}, owners=["team:regulatory"], retry_policy=RETRY,
              code_version=code_version(study, ""),
              check_specs=[dg.AssetCheckSpec("manifest_verifies", asset=key, blocking=True,
                                             description="Every file of the package has the SHA-256 "
                                                         "its manifest lists; nothing unlisted.")],
              description=f"{study} eCTD module 5 package: SDTM and ADaM XPT with Define-XML 2.1, "
                          "TLF outputs and ARD, manifest with SHA-256.")
    def package(context: dg.AssetExecutionContext):
        from submission.package import build_package, sha256_file, verify_package

        transfer = context.partition_key
        with user_errors():
            pkg = build_package(study, build_dir(study, transfer=transfer), progress=context.log.info)
            point_latest(study, transfer=transfer)
        problems = verify_package(pkg.folder)
        size = sum(f["bytes"] for f in pkg.files.values())
        yield dg.MaterializeResult(metadata={
            "folder": dg.MetadataValue.path(str(pkg.folder)), "files": len(pkg.files),
            "bytes": size, "transfer": transfer,
            "manifest_sha256": dg.MetadataValue.text(sha256_file(pkg.folder / "manifest.json"))})
        yield dg.AssetCheckResult(check_name="manifest_verifies", passed=not problems,
                                  metadata={"problems": dg.MetadataValue.md(
                                      "\n".join(f"- {p}" for p in problems[:20]) or "none")})

    return package


def build_changes_asset(study: str) -> dg.AssetsDefinition:
    deps = _build_deps(study)

    @dg.asset(key=[study, "changes", "report"], group_name=f"{study}_changes", deps=deps,
              partitions_def=transfers(study), kinds={"python", "html", "xlsx"}, retry_policy=RETRY,
              owners=["team:biostatistics"], code_version=code_version(study, ""),
              description=f"{study}: records added, removed and changed per SDTM/ADaM dataset, and "
                          "every TLF number that moved, since the previous transfer built.")
    def change_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from clinpipe.chain import report_changes

        with user_errors():
            result = report_changes(study, context.partition_key, progress=context.log.info)
            point_latest(study, transfer=context.partition_key)
        meta = {k: v for k, v in result.items() if k not in ("top_moved_md", "datasets", "report")}
        if "top_moved_md" in result:
            meta["numbers_moved"] = dg.MetadataValue.md(result["top_moved_md"])
            meta["datasets"] = dg.MetadataValue.json(result["datasets"])
            meta["report"] = dg.MetadataValue.path(result["report"])
        return dg.MaterializeResult(metadata=meta)

    return change_report
