"""Build a study's TLF outputs from its ADaM: catalogue -> ARD -> RTF / PNG, with lineage.

Writes, staged (a failed run leaves the previous outputs as they were), `out/<STUDY>/<TRANSFER>/tlf/`:

    <id>.rtf                  every table, listing and figure
    png/<id>[-k].png          the figures as PNG (embedded in the figure RTFs)
    ard/<id>.xpt, .parquet    analysis results data per output (contract: tlf/ard.py)
    lineage.parquet           ARD row -> ADaM, SDTM and raw records (tlf/lineage.py)
    index.csv, index.html     every output with its title, endpoints and files
    trace/<id>.html           each ARD number with the subjects and records behind it

Same inputs, same code: the same bytes (run id = hash of the ADaM manifest, the catalogue
and the code version; no clocks in any file).
"""
from __future__ import annotations

import hashlib
import importlib
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

from clinpipe.errors import ConfigError
from clinpipe.outputs import staged_layer
from clinpipe.paths import study_out
from edc.export import generator_version
from tlf.analyses.base import Result
from tlf.ard import ard_lineage, check_ard, write_ard
from tlf.catalog import Catalog, OutputSpec, catalog_dir, load_catalog
from tlf.context import TlfContext
from tlf.index import write_index, write_trace_pages
from tlf.lineage import LineageWriter, read_trace
from tlf.rtf import render_figure, render_table

PNG_DPI = 150


@dataclass
class TlfRun:
    study: str
    folder: Path
    index: pd.DataFrame
    lineage_rows: int


def analysis_function(spec: OutputSpec):
    module, _, name = spec.analysis.rpartition(".")
    try:
        mod = importlib.import_module(f"tlf.analyses.{module}")
        return getattr(mod, name)
    except (ImportError, AttributeError):
        raise ConfigError(f"output {spec.id}: no analysis {spec.analysis!r}",
                          field="analysis",
                          hint="name a function as <module>.<function> of tlf/analyses/") from None


def run_id(ctx: TlfContext, catalog: Catalog) -> str:
    key = f"{ctx.manifest_sha256}|{catalog.sha256}|{generator_version()}".encode()
    return hashlib.sha256(key).hexdigest()[:12]


def _lines(ctx: TlfContext, spec: OutputSpec, result: Result, rid: str) -> tuple[list, list, list]:
    title = [f"{'Table' if spec.type == 'table' else spec.type.title()} {spec.id}", spec.title,
             ctx.population_label(spec)]
    foot = [*spec.footnotes]
    if result.method:
        foot.append(f"Method: {result.method}")
    foot.append(f"Data cut-off: {ctx.cutoff}.")
    module = spec.analysis.rpartition(".")[0]
    source = [(f"Source: {', '.join(spec.datasets)}. Program: tlf/analyses/{module}.py "
              f"({spec.analysis}); catalogue mappings/{ctx.study}/tlf/{spec.source}. "
              f"Run {rid}.")]
    return title, foot, source


def build_output(ctx: TlfContext, spec: OutputSpec) -> Result:
    result = analysis_function(spec)(ctx, spec)
    result.ard = check_ard(result.ard, spec.id)
    return result


def run_tlf(study: str, adam_dir: Path | None = None, out_root=None, only: list[str] | None = None,
            progress=print) -> TlfRun:
    t0 = time.perf_counter()
    catalog = load_catalog(study)
    adam_dir = Path(adam_dir) if adam_dir else study_out(study, "adam", out_root)
    ctx = TlfContext.open(study, adam_dir, catalog)
    rid = run_id(ctx, catalog)
    specs = [o for o in catalog.outputs if not only or o.id in only]
    index_rows, ards, lineage = [], {}, LineageWriter()
    with staged_layer(study, "tlf", out_root, transfer=ctx.transfer) as folder:
        for i, spec in enumerate(specs, 1):
            t1 = time.perf_counter()
            result = build_output(ctx, spec)
            files = _write_output(ctx, spec, result, folder, rid)
            ards[spec.id] = result.ard
            lineage.add(spec.id, *ard_lineage(result.ard, result.members))
            result.members = None      # the links keep what lineage needs
            index_rows.append({"OUTID": spec.id, "TYPE": spec.type, "GROUP": spec.group,
                               "TITLE": spec.title, "POPULATION": ctx.population_label(spec),
                               "ENDPOINTS": "; ".join(spec.endpoints),
                               "DATASETS": ", ".join(spec.datasets), "ARD_ROWS": len(result.ard),
                               "FILES": "; ".join(files)})
            progress(f"  {study}: [{i}/{len(specs)}] {spec.id} {spec.title} "
                     f"({len(result.ard)} ARD rows, {time.perf_counter() - t1:.1f} s)")
        rows, pages = lineage.write(ctx, read_trace(ctx.sdtm_dir), folder / "lineage.parquet")
        index = pd.DataFrame(index_rows)
        write_index(folder, study, catalog, index, ctx.cutoff, rid)
        write_trace_pages(folder, study, ards, pages)
    final = study_out(study, "tlf", out_root, ctx.transfer)
    progress(f"  {study}: wrote {len(specs)} TLF outputs to {final} "
             f"({time.perf_counter() - t0:.1f} s)")
    return TlfRun(study, final, index, rows)


def _write_output(ctx: TlfContext, spec: OutputSpec, result: Result, folder: Path,
                  rid: str) -> list[str]:
    title, foot, source = _lines(ctx, spec, result, rid)
    files = []
    paths = write_ard(result.ard, spec.id, spec.title, folder / "ard")
    files += [p.relative_to(folder).as_posix() for p in paths.values()]
    rtf_path = folder / f"{spec.id}.rtf"
    if spec.type == "figure":
        pngs = []
        for k, fig in enumerate(result.figures, 1):
            name = f"{spec.id}.png" if len(result.figures) == 1 else f"{spec.id}-{k}.png"
            png = folder / "png" / name
            png.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(png, dpi=PNG_DPI, metadata={"Software": None})
            plt.close(fig)
            pngs.append(png)
            files.append(png.relative_to(folder).as_posix())
        if not pngs:
            raise ConfigError(f"figure {spec.id} drew nothing", field="analysis",
                              hint="the analysis must return at least one figure")
        render_figure(pngs, rtf_path, title_lines=title, footnotes=foot, source=source)
    else:
        if result.table is None:
            raise ConfigError(f"{spec.type} {spec.id} has no table layout", field="analysis",
                              hint="the analysis must return Result(table=...)")
        t = result.table
        render_table(t.body, t.headers, rtf_path, title_lines=title, footnotes=foot,
                     source=source, page_by=t.page_by, widths=t.widths, align=t.align)
    files.insert(0, rtf_path.relative_to(folder).as_posix())
    return files


__all__ = ["TlfRun", "build_output", "catalog_dir", "run_tlf"]
