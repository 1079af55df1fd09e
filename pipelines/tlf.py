"""Per-study TLF assets: one Dagster asset per output group of the study's catalogue
(`mappings/<STUDY>/tlf/<group>.yaml`, group `<STUDY>_tlf`), built together by one `tlf.run`
from the ADaM the study's ADaM assets wrote, downstream of their blocking conformance checks."""
import dagster as dg

from pipelines.adam import ALWAYS
from tlf.catalog import catalog_dir, load_catalog


def build_tlf_assets(study: str) -> dg.AssetsDefinition | None:
    if not (catalog_dir(study) / "endpoints.yaml").is_file():
        return None
    catalog = load_catalog(study)
    outs = {}
    for group in catalog.groups:
        ids = [o.id for o in catalog.outputs if o.group == group]
        outs[group] = dg.AssetOut(key=[study, "tlf", group], group_name=f"{study}_tlf",
                                  kinds={"python", "rtf"}, is_required=False,
                                  description=f"{study} {group} outputs: {', '.join(ids)}")

    @dg.multi_asset(name=f"{study}_tlf", outs=outs, can_subset=False,
                    deps=[dg.AssetKey([study, "adam", d]) for d in ALWAYS])
    def tlf_outputs(context: dg.AssetExecutionContext):
        from tlf.run import run_tlf

        run = run_tlf(study, progress=context.log.info)
        index = run.index
        for group in catalog.groups:
            mine = index[index["GROUP"] == group]
            meta = {"outputs": dg.MetadataValue.md(
                        mine[["OUTID", "TITLE", "ENDPOINTS", "ARD_ROWS"]].to_markdown(index=False)),
                    "ard_rows": int(mine["ARD_ROWS"].sum()),
                    "index": dg.MetadataValue.path(str(run.folder / "index.html"))}
            yield dg.Output(list(mine["OUTID"]), output_name=group, metadata=meta)

    return tlf_outputs
