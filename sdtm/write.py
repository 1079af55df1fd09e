"""One SDTM dataset out of the pipeline: `<name>.xpt` (SAS XPT v5, for submission) and
`<name>.parquet` (for the ADaM step), both byte-identical for the same data and run date.

Labels and the dataset label come from `sdtm.metadata` — the one source of truth.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sdtm.conform import TextColumn, conform_text
from sdtm.metadata import IG_VERSION, DomainMeta, domain
from sdtm.xpt import write_conformed_xpt


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _arrow_table(df: pd.DataFrame, meta: DomainMeta, labels: dict[str, str]) -> pa.Table:
    """Explicit types (an all-empty Char column stays string) and the labels in the schema:
    per field as `label`, and for the dataset as `clinpipe.*` keys. Built from arrays rather
    than `from_pandas` so no pandas version or index lands in the file."""
    fields = [pa.field(c, pa.string() if meta.var(c).type == "Char" else pa.float64(),
                       metadata={"label": labels[c]}) for c in df.columns]
    schema = pa.schema(fields, metadata={
        "clinpipe.dataset": meta.name, "clinpipe.label": meta.label,
        "clinpipe.labels": json.dumps(labels), "clinpipe.sdtmig": IG_VERSION})
    return pa.Table.from_arrays([_arrow_values(df[f.name], f.type) for f in fields], schema=schema)


def _arrow_values(values: pd.Series, kind: pa.DataType) -> pa.Array:
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        # conformed text is Arrow already: one chunk of `kind`, no Python object per cell
        return pa.array(values.array).cast(kind)
    return pa.array(values.to_numpy(), type=kind, from_pandas=True)


def write_dataset(df: pd.DataFrame, dataset: str, outdir: str | Path, *,
                  timestamp: dt.datetime | None = None) -> dict:
    """Conform `df` to SDTMIG (`sdtm.conform.conform`), check the transport limits and write
    `<outdir>/<dataset lower>.xpt` and `.parquet`. `timestamp` (the run date; default
    1960-01-01) goes into the XPT headers. Returns the paths, the row count and the files'
    SHA-256, and the conformed frame written (`data`)."""
    data, texts = conform_text(df, dataset, arrow=True)
    return write_conformed(data, texts, dataset, outdir, timestamp=timestamp)


def write_conformed(data: pd.DataFrame, texts: dict[str, TextColumn], dataset: str,
                    outdir: str | Path, *, timestamp: dt.datetime | None = None) -> dict:
    """`write_dataset` of what `conform_text(..., arrow=True)` made of the dataset: the
    parquet from `data`, the XPT's text from `texts` (the SDTM writer hands in the ASCII
    texts of `sdtm.conform.ascii_texts`)."""
    meta = domain(dataset)
    labels = {c: meta.var(c).label for c in data.columns}
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    xpt = write_conformed_xpt(data, outdir / f"{dataset.lower()}.xpt", dataset, meta.label,
                              labels, texts, timestamp=timestamp)
    parquet = outdir / f"{dataset.lower()}.parquet"
    pq.write_table(_arrow_table(data, meta, labels), parquet)
    return {"xpt": xpt, "parquet": parquet, "rows": len(data), "data": data,
            "sha256": {"xpt": _sha256(xpt), "parquet": _sha256(parquet)}}
