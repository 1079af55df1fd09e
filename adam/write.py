"""One ADaM dataset out of the pipeline: `<name>.xpt` (SAS XPT v5) and `<name>.parquet`.

Everything about the shape comes from the dataset spec (`adam.metadata.DatasetSpec`):
variable order, labels, types, and which numerics are dates. In memory a builder keeps dates
and datetimes as pandas datetimes (a time of day as seconds since midnight, a float); on the
way out they become what each format expects:
- XPT: SAS numbers (days since 1960-01-01, seconds for datetimes) with the formats DATE9. /
  DATETIME20. / TIME8., as ADaM requires numeric dates;
- parquet: Arrow date32 / timestamp columns, labels and SAS formats in the schema, so the TLF
  layer and other readers get real dates back.
The transport limits are the SDTM writer's (names, labels, 200 bytes, ASCII), checked first.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from adam.metadata import CT_VERSION, IG_VERSION, DatasetSpec, VarSpec
from clinpipe.errors import ClinpipeError
from sdtm.xpt import write_xpt

SAS_EPOCH = pd.Timestamp("1960-01-01")


class AdamShapeError(ClinpipeError):
    """A built frame does not match its dataset spec."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _as_datetime(values: pd.Series, spec: DatasetSpec, var: VarSpec) -> pd.Series:
    out = pd.to_datetime(values, errors="coerce")
    if var.kind == "date":
        out = out.dt.normalize()
    bad = values.notna() & out.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise AdamShapeError(f"{int(bad.sum())} value(s) of a {var.kind} variable are not {var.kind}s "
                             f"(first: {values.iloc[row]!r})", file=spec.name, record=f"row {row + 1}",
                             field=var.name, hint="the builder must give pandas dates/times")
    return out


def conform(df: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """`df` in the spec's shape: exactly its variables in its order, Char as str ('' missing),
    Num as float64, dates as datetime64. A missing or unexpected variable is an error naming
    it: a spec and a builder that disagree are a bug to fix, not to paper over."""
    missing = [n for n in spec.names if n not in df.columns]
    extra = [c for c in df.columns if c not in spec.names]
    if missing or extra:
        what = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                       extra and f"not in the spec {', '.join(map(str, extra))}"]))
        raise AdamShapeError(f"built {spec.name} does not match its spec ({what})", file=spec.sources[0],
                             hint="add the variable to the spec with its derivation, or drop it in the builder")
    out = {}
    for var in spec.variables:
        col = df[var.name]
        if var.kind in ("date", "datetime"):
            out[var.name] = _as_datetime(col, spec, var)
        elif var.type == "Char":
            out[var.name] = col.astype(object).where(col.notna(), "").map(str)
        else:
            num = pd.to_numeric(col, errors="coerce").astype(np.float64)
            bad = col.notna() & num.isna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise AdamShapeError(f"non-numeric value {col.iloc[row]!r} in a Num variable", file=spec.name,
                                     record=f"row {row + 1}", field=var.name, hint="fix the builder")
            out[var.name] = num
    return pd.DataFrame({k: v.to_numpy() for k, v in out.items()}, index=pd.RangeIndex(len(df)))


def _sas_numbers(values: pd.Series, kind: str) -> np.ndarray:
    delta = values - SAS_EPOCH
    if kind == "date":
        return (delta.dt.days).to_numpy(dtype=np.float64)
    return delta.dt.total_seconds().to_numpy(dtype=np.float64)


def _xpt_frame(data: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    out = data.copy()
    for var in spec.variables:
        if var.kind in ("date", "datetime"):
            out[var.name] = _sas_numbers(data[var.name], var.kind)
    return out


def _arrow_table(data: pd.DataFrame, spec: DatasetSpec) -> pa.Table:
    fields, arrays = [], []
    for var in spec.variables:
        meta = {"label": var.label}
        if var.format:
            meta["sas_format"] = var.format
        col = data[var.name]
        if var.kind == "date":
            arr = pa.array(col.to_numpy().astype("datetime64[D]"), type=pa.date32(),
                           mask=col.isna().to_numpy())
        elif var.kind == "datetime":
            arr = pa.array(col.dt.floor("s").to_numpy(dtype="datetime64[s]"), type=pa.timestamp("s"),
                           mask=col.isna().to_numpy())
        elif var.type == "Char":
            arr = pa.array(col.to_numpy(), type=pa.string())
        else:
            arr = pa.array(col.to_numpy(), type=pa.float64(), from_pandas=True)
        fields.append(pa.field(var.name, arr.type, metadata=meta))
        arrays.append(arr)
    schema = pa.schema(fields, metadata={
        "clinpipe.dataset": spec.name, "clinpipe.label": spec.label,
        "clinpipe.labels": json.dumps({v.name: v.label for v in spec.variables}),
        "clinpipe.adamig": IG_VERSION, "clinpipe.ct": CT_VERSION})
    return pa.Table.from_arrays(arrays, schema=schema)


def write_adam(df: pd.DataFrame, spec: DatasetSpec, outdir: str | Path, *,
               timestamp: dt.datetime | None = None) -> dict:
    """Conform `df` to `spec`, check the transport limits, write `<outdir>/<name>.xpt` and
    `.parquet`. Returns paths, rows, SHA-256 and the conformed frame (`data`)."""
    data = conform(df, spec)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    labels = {v.name: v.label for v in spec.variables}
    formats = {v.name: v.format for v in spec.variables if v.format}
    xpt = write_xpt(_xpt_frame(data, spec), outdir / f"{spec.name.lower()}.xpt", spec.name, spec.label,
                    labels, timestamp=timestamp, formats=formats)
    parquet = outdir / f"{spec.name.lower()}.parquet"
    pq.write_table(_arrow_table(data, spec), parquet)
    return {"xpt": xpt, "parquet": parquet, "rows": len(data), "data": data,
            "sha256": {"xpt": _sha256(xpt), "parquet": _sha256(parquet)}}
