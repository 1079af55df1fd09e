"""Per-study TLF assets: one Dagster asset per output group of the study's catalogue
(`mappings/<STUDY>/tlf/<group>.yaml`, group `<STUDY>_tlf`) and transfer partition, built
together by one `tlf.run` from the partition's ADaM, downstream of its blocking checks."""

import dagster as dg

from clinpipe.paths import study_out
from pipelines.adam import ALWAYS, adam_key
from pipelines.common import RETRY, code_version, transfers, user_errors
from tlf.catalog import catalog_dir, load_catalog


def tlf_key(study: str, group: str) -> dg.AssetKey:
    return dg.AssetKey([study, "tlf", group])


def build_tlf_assets(study: str) -> dg.AssetsDefinition | None:
    if not (catalog_dir(study) / "endpoints.yaml").is_file():
        return None
    catalog = load_catalog(study)
    version = code_version(study, "tlf")
    specs = []
    for group in catalog.groups:
        ids = [o.id for o in catalog.outputs if o.group == group]
        specs.append(dg.AssetSpec(tlf_key(study, group), group_name=f"{study}_tlf", code_version=version,
                                  kinds={"python", "rtf"}, deps=[adam_key(study, d) for d in ALWAYS],
                                  owners=["team:biostatistics"],
                                  description=f"{study} {group} outputs: {', '.join(ids)}"))

    @dg.multi_asset(name=f"{study}_tlf", specs=specs, can_subset=False, partitions_def=transfers(study),
                    retry_policy=RETRY)
    def tlf_outputs(context: dg.AssetExecutionContext):
        from tlf.run import run_tlf

        with user_errors():
            run = run_tlf(study, study_out(study, "adam", transfer=context.partition_key),
                          progress=context.log.info)
        index = run.index
        for group in catalog.groups:
            mine = index[index["GROUP"] == group]
            yield dg.MaterializeResult(asset_key=tlf_key(study, group), metadata={
                "outputs": dg.MetadataValue.md(
                    mine[["OUTID", "TITLE", "ENDPOINTS", "ARD_ROWS"]].to_markdown(index=False)),
                "ard_rows": int(mine["ARD_ROWS"].sum()), "transfer": context.partition_key,
                "index": dg.MetadataValue.path(str(run.folder / "index.html"))})

    return tlf_outputs
