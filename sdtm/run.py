"""Raw transfer -> `out/<STUDY>/<TRANSFER>/sdtm/` (XPT v5 + parquet per dataset, manifest.json)
and `.../reports/sdtm_reconciliation.*` (reconciliation, rejections, mapping issues), TRANSFER
being the export's transfer date.

Both layers are staged: a failed run leaves the previous good SDTM and reports as they were.
The same inputs give byte-identical files (the XPT header time is the transfer date).
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clinpipe import second_process
from clinpipe.config import load_study
from clinpipe.memory import release_memory
from clinpipe.outputs import staged_layers
from clinpipe.paths import transfer_id
from clinpipe.reports import write_report
from edc.read import RawTransfer, read_transfer
from edc.transfer import generator_version
from sdtm import metadata
from sdtm.build import SdtmBuild, build_sdtm
from sdtm.conform import ascii_texts, conform_text, has_long_text, split_long_text
from sdtm.trial_design import build_trial_design
from sdtm.write import write_conformed

_QUERY_COLUMNS = ("SUBJECT", "RECORDID", "FOLDERNAME")


class WrittenDatasets(Mapping):
    """The datasets of an SDTM folder as written, read from their parquet when asked for (in
    the validation data contract: Char string[pyarrow] with '' for missing, Num float64).
    Not kept in memory: at 10,000 subjects the frames take gigabytes, and the folder has them."""

    def __init__(self, folder: Path, names: list[str]):
        self.folder, self._names = Path(folder), list(names)

    def __getitem__(self, name: str) -> pd.DataFrame:
        from sdtm.validate.load import arrow_frame

        if name not in self._names:
            raise KeyError(name)
        return arrow_frame(pq.read_table(self.folder / f"{name.lower()}.parquet"))

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class SdtmRun:
    study: str
    raw: RawTransfer
    build: SdtmBuild
    datasets: Mapping[str, pd.DataFrame]
    written: dict[str, dict]
    folder: Path

    @property
    def transfer(self) -> str:
        """The build's transfer id (the name of the folder holding sdtm/)."""
        return self.folder.parent.name


def sdtm_datasets(raw: RawTransfer, build: SdtmBuild, split: bool = True) -> dict[str, pd.DataFrame]:
    """Mapped domains (text over 200 characters split into SUPP--; `split=False`: the
    writer does that) plus trial design."""
    datasets = build.datasets()
    for name in [n for n in datasets if split and not n.startswith("SUPP")]:
        _split(datasets, name)
    study = load_study(raw.study)
    dm = datasets["DM"]
    enrolled = dm["ARMNRS"] != "SCREEN FAILURE"   # TS ACTSUB counts enrolled subjects (CT C98735)
    trial = build_trial_design(
        study, raw.forms, data_cutoff=study.cutoff_date(raw.transfer_date),
        first_subject_date=_first_date(dm["RFICDTC"]), last_subject_date=None,
        actual_subjects=int(enrolled.sum()))
    datasets.update(trial)
    return dict(sorted(datasets.items()))


def _split(datasets: dict[str, pd.DataFrame], name: str) -> None:
    df, supp = split_long_text(datasets[name], name, datasets.get(f"SUPP{name}"))
    datasets[name] = df
    if supp is not None and len(supp):
        datasets[f"SUPP{name}"] = supp


def _first_date(dtc: pd.Series) -> dt.date | None:
    full = dtc[dtc.str.len() >= 10].str[:10]
    return dt.date.fromisoformat(full.min()) if len(full) else None


def run_sdtm(study: str, transfer: Path, out_root: Path | None = None, progress=print,
             encoding: str = "utf-8") -> SdtmRun:
    """`encoding`: of the CSV files that are not valid UTF-8 (`edc.csv_format.decode_check`)."""
    return write_sdtm(read_transfer(transfer, study=study, encoding=encoding), out_root, progress,
                      keep_raw=False)


def write_sdtm(raw: RawTransfer, out_root: Path | None = None, progress=print,
               processes: int | None = None, keep_raw: bool = True) -> SdtmRun:
    """`processes`: 2 maps and writes the largest domains in a second process while this one
    does the rest (default: 2 where `clinpipe.second_process` can fork). The outputs are the
    same byte for byte.

    `keep_raw=False`: each of `raw`'s frames is cut down in place to what the data-query
    listing reads as soon as no domain left to map reads it, for a caller that does not read
    them again (at 10,000 subjects LB's raw frame alone is half a gigabyte)."""
    t0 = time.perf_counter()
    study = raw.study
    stamp = dt.datetime.combine(raw.transfer_date or dt.date(1960, 1, 1), dt.time())
    transfer = transfer_id(raw.transfer_date or stamp.date())
    processes = second_process.processes() if processes is None else processes
    # SDTM and its reconciliation report are committed together: never one run's SDTM beside
    # another run's report
    with staged_layers(study, {"sdtm": None, "reports": ("sdtm_",)}, out_root,
                       transfer=transfer) as staging:
        folder = staging["sdtm"]
        writer = _Writer(folder, stamp)
        offload = _SecondProcess(writer) if processes > 1 else None
        with writer:
            build = build_sdtm(raw, offload=offload, let_go=None if keep_raw else _QUERY_COLUMNS,
                               meanwhile=writer.write_build)
            if offload is not None and offload.written is not None:
                writer.add(offload.written)
            datasets = {n: d for n, d in sdtm_datasets(raw, build, split=False).items()
                        if n not in writer.submitted}
            mapped = set(build.datasets())
            # Mapped: of the raw frames only what the data-query listing reads stays (form
            # record -> visit); the caller's RawTransfer is left whole unless keep_raw=False.
            raw = replace(raw, frames={form: df[[c for c in _QUERY_COLUMNS if c in df.columns]]
                                       for form, df in raw.frames.items()})
            release_memory()
            writer.write(datasets, mapped, build)
        progress(f"  {study}: mapped {len(writer.written)} SDTM datasets "
                 f"({sum(w['rows'] for w in writer.written.values()):,} records, {time.perf_counter() - t0:.1f} s)")
        # in dataset order, wherever each was written
        build.issues = pd.concat([build.issues, *(writer.transliterated[n] for n in sorted(writer.transliterated))],
                                 ignore_index=True)
        names = sorted(writer.written)
        written = {name: writer.written[name] for name in names}
        write_trace(build, folder)
        release_memory()
        _write_manifest(folder, raw, build, written)
        _write_reports(study, raw, build, written, staging["reports"])
    final = folder.parent / "sdtm"
    for info in written.values():  # the staging folder became `final`
        info["xpt"], info["parquet"] = final / info["xpt"].name, final / info["parquet"].name
    progress(f"  {study}: wrote SDTM to {final} ({time.perf_counter() - t0:.1f} s)")
    return SdtmRun(study, raw, build, WrittenDatasets(final, names), written, final)


class _Writer:
    """Conforms the datasets it is handed and writes each (XPT, parquet, digests: mostly
    outside the GIL) on a second thread while the next is conformed; one write in flight.
    What was written, and each dataset's non-ASCII mapping issues, are kept. As a context:
    closed on leaving, the write in flight waited for."""

    def __init__(self, folder: Path, stamp: dt.datetime):
        self.folder, self.stamp = folder, stamp
        self.written: dict[str, dict] = {}
        self.transliterated: dict[str, pd.DataFrame] = {}
        self._pool: ThreadPoolExecutor | None = None    # started on first use: after any fork
        self._pending: tuple[str, Future] | None = None
        self.submitted: set[str] = set()        # written, or being written

    def write(self, datasets: dict[str, pd.DataFrame], mapped: set[str], build: SdtmBuild) -> None:
        """Largest first, each frame let go once conformed (`build`'s copy too): the peak is
        the build plus two conformed datasets, not every dataset twice. A domain goes before
        its SUPP--, which takes the domain's text over 200 characters (split_long_text): the conformed distinct
        values say whether there is any, without reading every cell."""
        while datasets:
            name = min(datasets, key=lambda n: _write_order(datasets, n))
            df = datasets.pop(name)
            data, texts = conform_text(df, name, arrow=True, consume=True)
            if name in mapped and not name.startswith("SUPP") and has_long_text(texts):
                datasets[name] = df      # left whole by conform_text
                _split(datasets, name)
                data, texts = conform_text(datasets.pop(name), name, arrow=True, consume=True)
            del df
            # the XPT holds ASCII (FDA); the parquet and the listing keep the text as collected
            xpt_texts, changed = ascii_texts(texts)
            if changed:
                self.transliterated[name] = _transliterated(_trace(build, name), name, data, texts,
                                                            xpt_texts, changed)
            self._collect()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdtm-write")
            self.submitted.add(name)
            self._pending = name, self._pool.submit(write_conformed, data, xpt_texts, name, self.folder,
                                                    timestamp=self.stamp)
            del data, texts, xpt_texts
            _release(build, name)
            release_memory()

    def write_build(self, build: SdtmBuild) -> None:
        """Every dataset of `build` (a part of one: mapped datasets, no trial design)."""
        datasets = build.datasets()
        self.write(datasets, set(datasets), build)

    def add(self, other: _Writer) -> None:
        self.written.update(other.written)
        self.submitted |= other.submitted
        self.transliterated.update(other.transliterated)

    def _collect(self) -> None:
        if self._pending is not None:
            name, future = self._pending
            self._pending = None
            self.written[name] = future.result()
            del self.written[name]["data"]

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.close(failed=exc is not None)

    def close(self, failed: bool = False) -> None:
        """Wait for the write in flight: its error is raised here, unless the run `failed`
        already (that error is the one to report)."""
        try:
            self._collect()
        except Exception:
            if not failed:
                raise
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None


def _trace(build: SdtmBuild, name: str) -> pd.DataFrame:
    """The lineage trace of a dataset's domain (a SUPP--: its parent's)."""
    res = build.results.get(name.removeprefix("SUPP"))
    return res.trace if res is not None else pd.DataFrame(columns=_TRACE_COLUMNS)


_TRACE_COLUMNS = ["USUBJID", "SEQ", "FORM", "RECORDID"]


class _SecondProcess:
    """The build's offload: the costliest domains (by source records: the largest, then more
    while they stay within half of all) mapped and written into the staging folder by a
    forked second process, with its own `_Writer`; back come their traces, issues,
    rejections and visits, and what was written."""

    def __init__(self, writer: _Writer):
        self.writer = writer
        self.names: list[str] = []
        self.written: _Writer | None = None
        self._child: second_process.Elsewhere | None = None

    def __call__(self, map_one, costs: dict[str, int], forget_raw):
        total, share = sum(costs.values()), 0
        for name in sorted(costs, key=lambda n: (-costs[n], n)):
            if self.names and share + costs[name] > total / 2:
                break
            self.names.append(name)
            share += costs[name]
        if len(self.names) == len(costs):      # nothing left to do meanwhile
            self.names = []
            return None
        self._child = second_process.Elsewhere(lambda: self._work(map_one, forget_raw),
                                               "mapping " + ", ".join(self.names))
        return self

    def _work(self, map_one, forget_raw) -> tuple[dict, _Writer]:
        """In the child: map, then write through the child's copy of the writer. The raw
        frames its domains do not read are let go before, the rest after mapping: those are
        the child's copies (the parent's are not touched), but while the child holds them the
        parent's letting go frees nothing."""
        forget_raw(self.names)
        mapped = {name: map_one(name) for name in self.names}
        forget_raw([])
        part = SdtmBuild("", {n: m[0] for n, m in mapped.items()}, {}, pd.DataFrame(), pd.DataFrame(),
                         pd.DataFrame())
        with self.writer:
            self.writer.write_build(part)
        return mapped, self.writer

    def result(self):
        mapped, self.written = self._child.result()
        return mapped

    def cancel(self) -> None:
        self._child.cancel()


def _transliterated(trace: pd.DataFrame, name: str, data: pd.DataFrame, texts: dict, xpt_texts: dict,
                    changed: dict[str, np.ndarray]) -> pd.DataFrame:
    """A mapping issue per record whose text the XPT holds transliterated, with its raw form
    record where the lineage trace (of its domain; a SUPP-- record: its parent's) has it."""
    if name.startswith("SUPP"):
        seq = pd.to_numeric(data["IDVARVAL"], errors="coerce").to_numpy(dtype=float)
    elif f"{name}SEQ" in data.columns:
        seq = data[f"{name}SEQ"].to_numpy(dtype=float)
    else:
        seq = np.full(len(data), np.nan)
    parts = []
    for var, codes in changed.items():
        rows = np.flatnonzero(np.isin(texts[var].codes, codes))
        usubjid = data["USUBJID"].to_numpy(dtype=object)[rows] if "USUBJID" in data.columns else np.full(len(rows), "")
        keys = pd.MultiIndex.from_arrays([usubjid, seq[rows]])
        # a record may come from several raw records (a joined form): all of them, '; '-joined
        near = trace[trace["USUBJID"].isin(set(usubjid))]
        where = near.groupby(["USUBJID", "SEQ"])[["FORM", "RECORDID"]].agg(
            lambda x: "; ".join(map(str, x)))
        found = where.reindex(keys)
        was = texts[var].values.take(pa.array(texts[var].codes[rows])).to_pylist()
        now = xpt_texts[var].values.take(pa.array(texts[var].codes[rows])).to_pylist()
        parts.append(pd.DataFrame({
            "DOMAIN": name, "VARIABLE": var, "FORM": found["FORM"].fillna("").to_numpy(),
            "RECORDID": found["RECORDID"].fillna("").to_numpy(),
            "SUBJECT": [str(u).partition("-")[2] for u in usubjid], "VALUE": was,
            "MESSAGE": [f"not ASCII: the XPT holds {n!r} (transliterated; the parquet keeps the "
                        "text as collected)" for n in now]}))
    return pd.concat(parts, ignore_index=True)


def _write_order(datasets: dict[str, pd.DataFrame], name: str) -> tuple[int, int]:
    """Largest first; a SUPP-- right after its parent (not before: the parent may add to it)."""
    parent = name[4:] if name.startswith("SUPP") else None
    if parent in datasets:
        return -len(datasets[parent]), 1
    return -len(datasets[name]), 0


def _release(build: SdtmBuild, name: str) -> None:
    """Drop the build's frame of a written dataset; its trace, issues and counts stay."""
    if name in build.results:
        res = build.results[name]
        res.data = res.data.iloc[:0]
    elif name.startswith("SUPP") and name[4:] in build.results:
        res = build.results[name[4:]]
        res.supp = None if res.supp is None else res.supp.iloc[:0]
    elif name in build.derived:
        build.derived[name] = build.derived[name].iloc[:0]


def write_trace(build: SdtmBuild, folder: Path) -> Path:
    """`lineage/trace.parquet`: which raw form record (FORM, RECORDID) each SDTM record came
    from, keyed by DOMAIN, USUBJID and --SEQ. It travels with the SDTM it describes (same
    staging swap), so TLF lineage (`clinpipe trace`) can follow an analysis number back to the
    EDC record; in a subfolder, so that nothing reading the folder's datasets takes it for one."""
    cols = ["DOMAIN", "USUBJID", "SEQ", "FORM", "RECORDID"]
    parts = [pa.table({"DOMAIN": pa.array(np.full(len(res.trace), name, dtype=object), pa.string()),
                       "USUBJID": _text(res.trace["USUBJID"]),
                       "SEQ": pa.array(res.trace["SEQ"].to_numpy(dtype=float), pa.float64(),
                                                 from_pandas=True),   # NaN -> null
                       "FORM": _text(res.trace["FORM"]), "RECORDID": _text(res.trace["RECORDID"])})
             for name, res in build.results.items() if len(res.trace)]
    schema = pa.schema([(c, pa.float64() if c == "SEQ" else pa.string()) for c in cols])
    trace = pa.concat_tables(parts) if parts else schema.empty_table()
    # Arrow's sort is stable, orders UTF-8 text by code point and puts NaN last, as pandas did.
    trace = trace.take(pc.sort_indices(trace, sort_keys=[(c, "ascending") for c in cols]))
    path = folder / "lineage" / "trace.parquet"
    path.parent.mkdir(exist_ok=True)
    # The bytes the lineage has always had (written through pandas) without a pandas copy of
    # 4 M rows: one chunk and pandas' schema note, taken from a sample holding a value of each
    # column so that the note's types are those of the whole table.
    sample = sorted({0} | {int(pc.index(pc.is_valid(trace[c]), True).as_py()) for c in cols})
    note = pa.Table.from_pandas(trace.take([i for i in sample if 0 <= i < len(trace)]).to_pandas(),
                                preserve_index=False).schema.metadata
    pq.write_table(trace.combine_chunks().replace_schema_metadata(note), path)
    return path


def _text(values: pd.Series) -> pa.Array:
    try:
        return pa.array(values.to_numpy(dtype=object), pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):   # not all str: the text pandas gives them
        return pa.array(values.astype(str).to_numpy(dtype=object), pa.string())


def _portable(path: Path) -> str:
    """The transfer folder relative to the working directory when inside it, so two clones
    build the same manifest bytes."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _write_manifest(folder: Path, raw: RawTransfer, build: SdtmBuild, written: dict) -> None:
    """Provenance beside the data: inputs, specs, code and standards versions, outputs."""
    body = {
        "study": raw.study,
        "transfer_date": str(raw.transfer_date),
        "raw_format": raw.format,
        "raw_transfer": _portable(raw.transfer_dir),
        "raw_files_sha256": dict(sorted(raw.file_hashes.items())),
        "spec_files_sha256": dict(sorted(build.spec_hashes.items())),
        "code": generator_version(),
        "standards": {"SDTMIG": metadata.IG_VERSION, "SDTM CT": metadata.CT_VERSION},
        "datasets": {n: {"rows": w["rows"], "xpt_sha256": w["sha256"]["xpt"],
                         "parquet_sha256": w["sha256"]["parquet"]} for n, w in sorted(written.items())},
    }
    (folder / "manifest.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


_NOTES = {
    "rejections": "raw records not in SDTM, each with the reason (UNACCOUNTED counts the rest)",
    "mapping issues": "values that reached SDTM changed or empty, named by raw form and record",
    "raw findings": "what the reader's edit checks found in the transfer, before mapping: the "
                    "site queries (missing, out of range, unknown code, impossible or "
                    "inconsistent date, non-ASCII, too long, duplicate, inactivated, orphan)",
}


def raw_findings(raw: RawTransfer) -> pd.DataFrame:
    """The reader's findings in the report's terms (CDISC-style upper-case column names)."""
    frame = raw.findings_frame()
    frame.columns = ["FILE", "FORM", "RECORDID", "SUBJECT", "FIELD", "VALUE", "KIND", "MESSAGE"]
    return frame


def _write_reports(study: str, raw: RawTransfer, build: SdtmBuild, written: dict,
                   folder: Path) -> None:
    summary = pd.DataFrame([(n, metadata.domain(n).label, w["rows"]) for n, w in written.items()],
                           columns=["DATASET", "LABEL", "RECORDS"])
    meta = {"study": study, "transfer date": str(raw.transfer_date), "raw format": raw.format,
            "standards": f"SDTMIG {metadata.IG_VERSION}, SDTM CT {metadata.CT_VERSION}",
            "rule": "every raw record is mapped or rejected with a reason; UNACCOUNTED must be 0; "
                    "every collected field is mapped or listed as not submitted with a reason "
                    "(field coverage); UNMAPPED must be none"}
    write_report(folder, "sdtm_reconciliation", f"{study}: raw to SDTM reconciliation",
                 {"reconciliation": build.reconciliation, "field coverage": build.field_coverage,
                  "rejections": build.rejections,
                  "mapping issues": build.issues, "raw findings": raw_findings(raw),
                  "datasets": summary}, meta, notes=_NOTES)
