"""Transfer manifest (`transfer.json`) and writing a whole transfer folder.

A manifest beside the files records, per file, its row count and SHA-256 as exported, so a
file truncated or altered on its way to us is caught before it is parsed. Real EDC
transfers may come without one; when present it is checked (`read_transfer` does it).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clinpipe.config import StudyConfig
from clinpipe.errors import ExportError
from edc.csv_format import csv_name, write_csv
from edc.export import ChunkedFrames, generator_version
from edc.forms import FormsConfig
from edc.odm_format import odm_name, write_odm
from edc.sas_format import write_xpt

MANIFEST_NAME = "transfer.json"
FORMATS = ("csv", "odm", "xpt")
_ALTERED = "the file was truncated or altered after export: ask for a re-transfer"


@dataclass(frozen=True)
class ManifestFile:
    name: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    path: Path
    study: str
    transfer_date: dt.date | None
    format: str
    generator: str
    files: dict[str, ManifestFile]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    except OSError as exc:
        raise ExportError(f"cannot read the file ({exc.strerror})", file=path,
                          hint="check the file exists and is readable") from None
    return digest.hexdigest()


def write_manifest(directory: Path, *, study: str, transfer_date: dt.date | None, format: str,
                   rows: Mapping[str, int]) -> Path:
    """Write transfer.json for the files named in `rows` (file name -> records it holds)."""
    directory = Path(directory)
    body = {
        "study": study,
        "transfer_date": transfer_date.isoformat() if transfer_date else None,
        "format": format,
        "generator": generator_version(),
        "files": [{"name": name, "rows": int(rows[name]), "sha256": file_sha256(directory / name)}
                  for name in sorted(rows)],
    }
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def rehash_manifest(directory: Path) -> Path:
    """Rewrite transfer.json with the current hashes of its files (same rows and metadata)."""
    m = load_manifest(directory)
    return write_manifest(directory, study=m.study, transfer_date=m.transfer_date, format=m.format,
                          rows={name: f.rows for name, f in m.files.items()})


def load_manifest(directory: Path) -> Manifest | None:
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        files = {f["name"]: ManifestFile(str(f["name"]), int(f["rows"]), str(f["sha256"]))
                 for f in body["files"]}
        when = body.get("transfer_date")
        return Manifest(path=path, study=str(body["study"]),
                        transfer_date=dt.date.fromisoformat(when) if when else None,
                        format=str(body.get("format", "")),
                        generator=str(body.get("generator", "")),
                        files=files)
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:  # JSON errors too
        raise ExportError(f"transfer manifest is not readable ({exc.__class__.__name__}: {exc})",
                          file=path, hint="fix or remove transfer.json; it is optional") from None


def check_hashes(manifest: Manifest, hashes: Mapping[str, str], complete: bool = True) -> None:
    """Every delivered data file is in the manifest with the same SHA-256, and (when the whole
    folder is read, `complete`) every file the manifest lists is delivered."""
    for name, sha in hashes.items():
        entry = manifest.files.get(name)
        if entry is None:
            raise ExportError(f"file is not listed in {MANIFEST_NAME}",
                              file=manifest.path.parent / name,
                              hint=f"the transfer lists {sorted(manifest.files)}; remove the stray "
                                   f"file or ask for a corrected manifest")
        if entry.sha256 != sha:
            raise ExportError(f"file does not match {MANIFEST_NAME}: expected {entry.rows} rows "
                              f"with sha256 {entry.sha256}, found sha256 {sha}",
                              file=manifest.path.parent / name, hint=_ALTERED)
    absent = sorted(set(manifest.files) - set(hashes))
    if complete and absent:
        raise ExportError(f"{MANIFEST_NAME} lists file(s) {absent} that are not in the folder",
                          file=manifest.path,
                          hint="the transfer is incomplete: ask for the missing file(s)")


def check_rows(manifest: Manifest, name: str, rows: int) -> None:
    entry = manifest.files.get(name)
    if entry is not None and entry.rows != rows:
        raise ExportError(f"file has {rows} records, {MANIFEST_NAME} says {entry.rows}",
                          file=manifest.path.parent / name, hint=_ALTERED)


def write_transfer(frames: Mapping[str, pd.DataFrame], forms: FormsConfig, study: StudyConfig,
                   outdir: Path, *, format: str = "csv", transfer_date: dt.date | None = None,
                   manifest: bool = True) -> list[Path]:
    """Write a transfer folder in one format ('csv', 'odm' or 'xpt') plus transfer.json."""
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; one of {FORMATS}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if format == "odm":
        path = outdir / odm_name(study.study.studyid)
        write_odm(frames, forms, study, path)
        paths = [path]
        rows = {path.name: sum(len(frames[f.oid]) for f in forms.forms if f.oid in frames)}
    else:
        paths = (write_csv if format == "csv" else write_xpt)(dict(frames), forms, outdir)
        rows = {p.name: len(frames[f.oid]) if f.oid in frames else 0
                for p, f in zip(paths, forms.forms)}
    if manifest:
        write_manifest(outdir, study=study.study.studyid, transfer_date=transfer_date,
                       format=format, rows=rows)
    return paths


def write_chunked_transfer(chunked: ChunkedFrames, forms: FormsConfig, study: StudyConfig,
                           outdir: Path, *, format: str = "csv",
                           transfer_date: dt.date | None = None, manifest: bool = True,
                           ) -> list[Path]:
    """`write_transfer` of `chunked.frames()`, byte for byte; CSV is written a window of rows at
    a time, so no whole frame is ever held (the other formats take the frames)."""
    if format != "csv":
        return write_transfer(chunked.frames(), forms, study, outdir, format=format,
                              transfer_date=transfer_date, manifest=manifest)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for form in forms.forms:
        path = outdir / csv_name(form.oid)
        with open(path, "wb") as handle:
            handle.write((",".join(_csv_field(c) for c in form.columns()) + "\n").encode("utf-8"))
            handle.writelines(_csv_lines(window) for window in chunked.windows(form))
        paths.append(path)
    if manifest:
        write_manifest(outdir, study=study.study.studyid, transfer_date=transfer_date,
                       format=format, rows={p.name: chunked.rows[f.oid]
                                            for p, f in zip(paths, forms.forms)})
    return paths


# What `edc.csv_format.write_csv` writes (csv.writer, QUOTE_MINIMAL, "\r\n" as the terminator
# it quotes for, then "\n"): a field holding a comma, a quote, CR or LF is quoted, its quotes
# doubled; nothing else is.
_QUOTE_BYTES = np.zeros(256, dtype=bool)
_QUOTE_BYTES[list(b',"\r\n')] = True
_NEEDS_QUOTES = r'[,"\r\n]'


def _csv_field(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_column(values: pa.Array) -> pa.Array:
    data = values.buffers()[2]
    # Most columns hold no such byte at all: one look at the bytes settles it.
    if data is None or not _QUOTE_BYTES[np.frombuffer(data, dtype=np.uint8)].any():
        return values
    needs = pc.match_substring_regex(values, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return values
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, values)


def _csv_lines(window: pa.Table) -> memoryview:
    """The window's rows as CSV lines, one buffer."""
    cells = [_csv_column(col.combine_chunks()) for col in window.columns]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*cells, ","), "", "\n")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32 if lines.type == pa.string()
                            else np.int64)
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[start:end]
