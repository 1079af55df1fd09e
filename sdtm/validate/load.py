"""Reading an SDTM folder for validation, and the data contract every check may assume.

The contract (`normalise`): a Char column is `string[pyarrow]` with '' for missing (the XPT
semantic: SAS has no null text, and trailing blanks are padding), a Num column is float64.
Schemas and rules may rely on it, whoever produced the frames: the folder reader below or the
SDTM writer's in-process frames (`validate_run`).

`load_sdtm_folder` reads each dataset from its parquet where there is one (some 30 times
faster than decoding the XPT, with the same values: the writer writes both from one frame)
and from the XPT only where there is no parquet. The XPT, the file that is submitted, is then
checked on its own, cheaply, so that validating the parquet still vouches for it:

  XPT-SYNC   the XPT is not the file the build wrote (its SHA-256 differs from the one in
             manifest.json), is missing or unreadable, or its header disagrees with the
             parquet (variable names and order, labels, Char/Num types, record count,
             dataset name and label)                                                ERROR

A parquet whose SHA-256 differs from manifest.json is not the build's either: that dataset is
then read from its XPT (and the parquet is named in an XPT-SYNC finding).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyreadstat

from clinpipe.errors import ClinpipeError
from sdtm.validate.findings import findings_frame

CHAR = pd.StringDtype("pyarrow")
SYNC_RULE, SYNC_SEVERITY = "XPT-SYNC", "ERROR"
SYNC_CHECKS = ("the XPT is the file the build wrote (SHA-256 in manifest.json) and its header "
               "agrees with the parquet read (names, order, labels, types, records, dataset)")
SYNC_SOURCE = "SAS XPT v5 as submitted (FDA Study Data TCG); the build's manifest.json"
_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")
# The record before the observations, in XPT v5 ("OBS     ") and v8 ("OBSV8   ").
_OBS_HEADER = re.compile(rb"HEADER RECORD\*{7}OBS(?:V8)? {3,5}HEADER RECORD!{7}0{30} {2}")


class SdtmFolder(dict):
    """Datasets by name, normalised to the contract, with what reading the folder found about
    its files (`file_findings`: XPT-SYNC) and where each dataset was read from (`sources`)."""

    def __init__(self, datasets: dict[str, pd.DataFrame], sources: dict[str, Path], *,
                 folder: Path, file_findings: pd.DataFrame):
        super().__init__(datasets)
        self.folder = folder
        self.file_findings = file_findings
        self.sources = sources


# ---- the contract --------------------------------------------------------------------------

def normalise(datasets: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every frame to the contract; a frame already in it is returned as it is (no copy).
    Keeps what the folder reader found (an `SdtmFolder` stays one)."""
    out = {name: normalise_frame(df) for name, df in datasets.items()}
    if isinstance(datasets, SdtmFolder):
        return SdtmFolder(out, datasets.sources, folder=datasets.folder,
                          file_findings=datasets.file_findings)
    return out


def normalise_frame(df: pd.DataFrame) -> pd.DataFrame:
    changed = {}
    for col in df.columns:
        s = df[col]
        fixed = _normal_column(s)
        if fixed is not s:
            changed[col] = fixed
    if not changed:
        return df
    return pd.DataFrame({c: changed.get(c, df[c]) for c in df.columns}, index=df.index, copy=False)


def _normal_column(s: pd.Series) -> pd.Series:
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return s if dtype == np.float64 else s.astype(np.float64)
    if dtype == CHAR:
        chunks = s.array._pa_array
        fixed = char_array(chunks)
        return s if fixed is chunks else pd.Series(_string_array(fixed), index=s.index, name=s.name)
    if isinstance(dtype, pd.CategoricalDtype):
        s = s.astype(object)
    elif not (dtype == object or isinstance(dtype, (pd.StringDtype, pd.ArrowDtype))):
        return s   # dates, times: no XPT type; the schemas' type check reports them
    if isinstance(dtype, pd.ArrowDtype) and not pa.types.is_string(dtype.pyarrow_dtype) \
            and not pa.types.is_large_string(dtype.pyarrow_dtype):
        return s
    try:
        arrow = pa.chunked_array([pa.array(s.to_numpy(dtype=object), type=pa.large_string(),
                                           from_pandas=True)])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Text and numbers in one column: the XPT writer can only store it as text.
        text = s.astype(str).where(s.notna(), None)
        arrow = pa.chunked_array([pa.array(text.to_numpy(dtype=object), type=pa.large_string(),
                                           from_pandas=True)])
    return pd.Series(_string_array(char_array(arrow)), index=s.index, name=s.name)


def char_array(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text as an XPT gives it back: '' for null, trailing blanks dropped. The same object
    when it already is (one pass over the data to find out, no copy)."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.large_string())
    if values.null_count:
        values = pc.fill_null(values, "")
    if pc.any(pc.ends_with(values, " ")).as_py():
        values = pc.utf8_rtrim(values, characters=" ")
    return values


def _string_array(values: pa.ChunkedArray) -> pd.arrays.ArrowStringArray:
    return pd.arrays.ArrowStringArray(values)


def arrow_frame(table: pa.Table) -> pd.DataFrame:
    """A parquet table as a contract frame: text -> string[pyarrow], numbers -> float64."""
    cols = {}
    for name, col in zip(table.column_names, table.columns):
        if _PANDAS_INDEX.match(name):
            continue
        kind = _kind(col.type)
        if kind == "Char":
            cols[name] = _string_array(char_array(col))
        elif kind == "Num":
            cols[name] = col.cast(pa.float64()).to_numpy()
        else:
            cols[name] = col.to_pandas()
    return pd.DataFrame(cols, copy=False)


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return "Char"
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) \
            or pa.types.is_decimal(t):
        return "Num"
    return str(t)


# ---- the folder ----------------------------------------------------------------------------

def load_sdtm_folder(folder: Path) -> SdtmFolder:
    """Every dataset of a folder, normalised: the parquet where there is one, else the XPT;
    each XPT beside a parquet checked against manifest.json and the parquet (XPT-SYNC)."""
    from sdtm.xpt import read_xpt

    folder = Path(folder)
    if not folder.is_dir():
        raise ClinpipeError("SDTM folder not found", file=folder,
                            hint="run `clinpipe sdtm` first or give the folder holding the .xpt files")
    xpts = {p.stem.upper(): p for p in sorted(folder.glob("*.xpt"))}
    parquets = {p.stem.upper(): p for p in sorted(folder.glob("*.parquet"))}
    if not xpts and not parquets:
        raise ClinpipeError("no .xpt or .parquet datasets in the folder", file=folder)
    manifest = _manifest_datasets(folder)
    findings: list[dict] = []
    out, sources = {}, {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        # hashing the XPTs (the bulk of the bytes) runs beside the parquet decoding
        xpt_sha = {name: pool.submit(_sha256, path) for name, path in xpts.items()
                   if name in parquets and manifest.get(name, {}).get("xpt_sha256")}
        for name in sorted(xpts.keys() | parquets.keys()):
            entry = manifest.get(name, {})
            parquet, xpt = parquets.get(name), xpts.get(name)
            if parquet is not None and xpt is not None and entry.get("parquet_sha256") \
                    and _sha256(parquet) != entry["parquet_sha256"]:
                _read_parquet(parquet, metadata_only=True)   # an unreadable file stays an error
                findings.append(_sync(name, "", f"{parquet.name} differs from manifest.json "
                                      f"(SHA-256): it is not the file the build wrote, so {xpt.name} "
                                      f"was validated; rebuild the SDTM (`clinpipe sdtm`) to "
                                      f"rewrite {parquet.name}"))
                parquet = None
            if parquet is None:
                out[name], sources[name] = normalise_frame(read_xpt(xpt)[0]), xpt
                continue
            table = _read_parquet(parquet)
            out[name], sources[name] = arrow_frame(table), parquet
            if xpt is None:
                if entry.get("xpt_sha256"):
                    findings.append(_sync(name, "", f"manifest.json lists {name.lower()}.xpt but "
                                          f"the file is missing; rebuild the SDTM (`clinpipe sdtm`) "
                                          f"or restore it"))
                continue
            findings += _header_findings(name, xpt, parquet, table.schema, table.num_rows, entry)
        for name, future in xpt_sha.items():
            if future.result() != manifest[name]["xpt_sha256"]:
                path = xpts[name]
                findings.append(_sync(name, "", f"{path.name} differs from manifest.json (SHA-256): "
                                      f"it is not the file the build wrote; rebuild the SDTM "
                                      f"(`clinpipe sdtm`) to rewrite {path.name}, or restore it"))
    found = findings_frame(findings) if findings else findings_frame()
    return SdtmFolder(*_join_splits(out, sources), folder=folder, file_findings=found)


def split_parent(name: str, df: pd.DataFrame) -> str | None:
    """The domain a split dataset belongs to (SDTMIG 3.4 section 4.1.7: LBCH, LBHE and LBUR are
    LB, their SUPPLBCH... SUPPLB), read off its DOMAIN (RDOMAIN) values; None otherwise."""
    from sdtm import metadata

    known = set(metadata.domains())
    supp = name.startswith("SUPP") and name != "SUPPQUAL"
    core = name[4:] if supp else name
    column = "RDOMAIN" if supp else "DOMAIN"
    if core in known or len(core) <= 2 or core[:2] not in known or column not in df:
        return None
    values = set(df[column].dropna().astype(str).unique())
    if values != {core[:2]}:
        return None
    return f"SUPP{core[:2]}" if supp else core[:2]


def _join_splits(out: dict[str, pd.DataFrame], sources: dict[str, Path]):
    """Split datasets validated as their domain: one frame per domain (the split --SEQ values
    are unique across the splits, as SDTMIG requires), the source naming every file."""
    groups: dict[str, list[str]] = {}
    for name, df in out.items():
        parent = split_parent(name, df)
        if parent is not None:
            groups.setdefault(parent, []).append(name)
    for parent, names in groups.items():
        frames = [out.pop(n) for n in names] + ([out.pop(parent)] if parent in out else [])
        out[parent] = normalise_frame(pd.concat(frames, ignore_index=True))
        sources[parent] = Path(", ".join(str(sources.pop(n)) for n in names))
    return dict(sorted(out.items())), sources


def _read_parquet(path: Path, metadata_only: bool = False) -> pa.Table | pq.FileMetaData:
    try:
        if metadata_only:
            return pq.read_metadata(path)
        # text read straight as large_string, what pandas' string[pyarrow] holds: no cast after
        schema = pq.read_schema(path)
        wide = pa.schema([f.with_type(pa.large_string()) if pa.types.is_string(f.type) else f
                          for f in schema], metadata=schema.metadata)
        return pq.read_table(path, schema=wide)
    except (OSError, ValueError) as exc:   # pyarrow's ArrowInvalid is a ValueError
        raise ClinpipeError(f"not a readable parquet file ({exc})", file=path,
                            hint="re-export the dataset, or remove the file from the folder") from None


def _manifest_datasets(folder: Path) -> dict[str, dict]:
    path = folder / "manifest.json"
    if not path.is_file():
        return {}
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClinpipeError(f"not a readable manifest ({exc})", file=path,
                            hint="rebuild the SDTM (`clinpipe sdtm`) or remove manifest.json") from None
    datasets = body.get("datasets") if isinstance(body, dict) else None
    return {str(k).upper(): v for k, v in datasets.items() if isinstance(v, dict)} \
        if isinstance(datasets, dict) else {}


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _sync(dataset: str, variable: str, message: str, value: str = "") -> dict:
    return {"RULE": SYNC_RULE, "SEVERITY": SYNC_SEVERITY, "DATASET": dataset, "USUBJID": "",
            "SEQ": float("nan"), "VARIABLE": variable, "VALUE": value, "MESSAGE": message}


# ---- the XPT header against the parquet ------------------------------------------------------

def _header_findings(name: str, xpt: Path, parquet: Path, schema: pa.Schema, rows: int,
                     entry: dict) -> list[dict]:
    try:
        _, meta = pyreadstat.read_xport(str(xpt), metadataonly=True)
        xpt_rows = _xpt_rows(xpt, sum(meta.variable_storage_width.values()))
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, OSError, ValueError) as exc:
        return [_sync(name, "", f"{xpt.name} is not a readable SAS XPT file ({exc}); rebuild the "
                      f"SDTM (`clinpipe sdtm`) to rewrite it")]
    # Which file to rebuild: the one that is not what the build wrote, when the manifest says.
    redo = xpt.name if entry.get("parquet_sha256") else f"{xpt.name} and {parquet.name}"
    pairs = f"{xpt.name} and {parquet.name} disagree on"
    fix = f"; rebuild the SDTM (`clinpipe sdtm`) to rewrite {redo}"
    out = []
    fields = [f for f in schema if not _PANDAS_INDEX.match(f.name)]
    names = [f.name for f in fields]
    if meta.column_names != names:
        only_x = [c for c in meta.column_names if c not in names]
        only_p = [c for c in names if c not in meta.column_names]
        what = (f"only in the XPT: {', '.join(only_x) or 'none'}; only in the parquet: "
                f"{', '.join(only_p) or 'none'}" if only_x or only_p else "the variable order")
        out.append(_sync(name, "", f"{pairs} the variables ({what}){fix}"))
    kinds = meta.readstat_variable_types
    for f in fields:
        if f.name not in kinds:
            continue
        x_kind = "Char" if kinds[f.name] == "string" else "Num"
        p_kind = _kind(f.type)
        if x_kind != p_kind:
            out.append(_sync(name, f.name, f"{pairs} the type of {f.name}: {x_kind} in the XPT, "
                             f"{p_kind} in the parquet{fix}", x_kind))
        label = (f.metadata or {}).get(b"label")
        x_label = meta.column_names_to_labels.get(f.name) or ""
        if label is not None and label.decode() != x_label:
            out.append(_sync(name, f.name, f"{pairs} the label of {f.name}: {x_label!r} in the XPT, "
                             f"{label.decode()!r} in the parquet{fix}", x_label))
    if xpt_rows is not None and xpt_rows != rows:
        out.append(_sync(name, "", f"{pairs} the number of records: {xpt_rows} in the XPT, {rows} "
                         f"in the parquet{fix}", str(xpt_rows)))
    extra = schema.metadata or {}
    for key, x_value, what in ((b"clinpipe.dataset", meta.table_name or "", "dataset name"),
                               (b"clinpipe.label", meta.file_label or "", "dataset label")):
        if key in extra and extra[key].decode() != x_value:
            out.append(_sync(name, "", f"{pairs} the {what}: {x_value!r} in the XPT, "
                             f"{extra[key].decode()!r} in the parquet{fix}", x_value))
    return out


def _xpt_rows(path: Path, row_length: int) -> int | None:
    """The record count an XPT's size gives (pyreadstat's metadata has none for XPT): the
    observations follow the OBS header record, padded with blanks to a multiple of 80 bytes.
    None where the header is not found (not a transport file pyreadstat would write)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
        match = _OBS_HEADER.search(head)
        if match is None or row_length <= 0:
            return None
        start = match.end()
        rows = (size - start) // row_length
        if row_length < 80 and rows:
            # a short record may fit in the final padding: blank records there are padding
            fh.seek(max(size - 80, start))
            tail = fh.read()
            while rows and start + (rows - 1) * row_length >= size - 80:
                offset = start + (rows - 1) * row_length - (size - len(tail))
                if tail[offset:offset + row_length].strip(b" "):
                    break
                rows -= 1
    return rows
