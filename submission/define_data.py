"""What a built SDTM or ADaM folder holds, as define.xml needs it: the datasets actually
written, each variable's label/type/length as the XPT stores them, and the values the data
use (codelist terms, test codes, parameter codes) — read column by column from the parquet
twin with pyarrow, so a 1.7 M-row LB costs a few column scans, not a pandas frame.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyreadstat

from clinpipe.errors import ClinpipeError

MANIFEST = "manifest.json"
MAX_DECIMALS = 8          # SignificantDigits beyond this are binary noise, not data
# SAS counts dates from 1960-01-01, Arrow from 1970-01-01
_SAS_DAYS = 3653
_SAS_SECONDS = _SAS_DAYS * 86400


class DefineInputError(ClinpipeError):
    """A datasets folder cannot be described in define.xml as it stands."""


@dataclass(frozen=True)
class NumStats:
    integral: bool          # every value a whole number
    decimals: int           # most digits after the point (0 when integral)
    has_data: bool


class DatasetFile:
    """One dataset of the folder: its XPT header and lazy column access to its parquet."""

    def __init__(self, folder: Path, name: str):
        self.name = name
        self.xpt = folder / f"{name.lower()}.xpt"
        self.parquet = folder / f"{name.lower()}.parquet"
        if not self.parquet.is_file():
            raise DefineInputError(f"{self.xpt.name} has no {self.parquet.name} beside it",
                                   file=self.xpt, hint="rebuild the folder with the pipeline "
                                   "(define.xml reads the values from the parquet twin)")
        try:
            _, meta = pyreadstat.read_xport(str(self.xpt), metadataonly=True)
        except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, OSError) as exc:
            raise DefineInputError(f"not a readable SAS XPT file ({exc})", file=self.xpt) from None
        self.label: str = meta.file_label or ""
        self.columns: list[str] = list(meta.column_names)
        self.labels: dict[str, str] = {c: meta.column_names_to_labels.get(c) or "" for c in self.columns}
        self.types = {c: "Char" if meta.readstat_variable_types[c] == "string" else "Num"
                      for c in self.columns}
        self.lengths: dict[str, int] = dict(meta.variable_storage_width)
        self.formats: dict[str, str] = {c: f for c, f in meta.original_variable_types.items() if f}
        self._cache: dict[str, pa.ChunkedArray] = {}

    @cached_property
    def _pq(self) -> pq.ParquetFile:
        return pq.ParquetFile(self.parquet)

    @cached_property
    def rows(self) -> int:
        return self._pq.metadata.num_rows

    def column(self, name: str) -> pa.ChunkedArray:
        if name not in self._cache:
            if name not in self._pq.schema_arrow.names:
                raise DefineInputError(f"{name} is in {self.xpt.name} but not in {self.parquet.name}",
                                       file=self.parquet, field=name, hint="rebuild the folder")
            self._cache[name] = self._pq.read(columns=[name]).column(0)
        return self._cache[name]

    def values(self, name: str) -> list:
        """Distinct non-missing values of a column, sorted (numbers as Python floats)."""
        col = self.column(name)
        uniq = pc.unique(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)).drop_null()
        out = [v for v in uniq.to_pylist() if v != ""]
        return sorted(out)

    def text_has_data(self, name: str) -> bool:
        col = self.column(name)
        return bool(pc.sum(pc.not_equal(col, "")).as_py() or 0)

    def max_text(self, name: str) -> int:
        col = self.column(name)
        return int(pc.max(pc.utf8_length(col)).as_py() or 0)

    def shape(self, var) -> None:
        """A define Var's DataType, Length, SignificantDigits and whether the column holds data,
        as written to the XPT (ISO 8601 text typed date/datetime/durationDatetime)."""
        from submission.define_model import iso_type

        name = var.name
        if self.types[name] == "Char":
            var.has_data = self.text_has_data(name)
            iso = iso_type(name, self.max_text(name) if var.has_data else 0)
            var.data_type = iso or "text"
            var.length = None if iso else self.lengths[name]
        else:
            stats = self.num_stats(name)
            var.has_data = stats.has_data
            var.data_type = "integer" if stats.integral else "float"
            var.length = self.lengths[name]
            var.digits = None if stats.integral else stats.decimals

    def num_stats(self, name: str) -> NumStats:
        return num_stats(self.column(name))

    def pairs(self, by: list[str], value: str) -> pa.Table:
        """Distinct (by..., value) rows with a value, e.g. (LBTESTCD, LBORRES)."""
        table = self._pq.read(columns=[*by, value])
        keep = pc.not_equal(table[value], "") if pa.types.is_string(table.schema.field(value).type) \
            else pc.is_valid(table[value])
        return table.filter(keep).group_by([*by, value]).aggregate([])


def as_sas_numbers(col: pa.ChunkedArray) -> np.ndarray:
    """Non-missing values as the numbers the XPT holds (dates as SAS days, datetimes as SAS
    seconds), so types and digits are judged on what a reviewer reads."""
    col = col.drop_null()
    if pa.types.is_date(col.type):
        return col.cast(pa.int32()).to_numpy().astype(np.float64) + _SAS_DAYS
    if pa.types.is_timestamp(col.type):
        return col.cast(pa.timestamp("s")).cast(pa.int64()).to_numpy().astype(np.float64) + _SAS_SECONDS
    return col.to_numpy().astype(np.float64)


def num_stats(col: pa.ChunkedArray) -> NumStats:
    values = as_sas_numbers(col)
    values = values[np.isfinite(values)]
    if not values.size:
        return NumStats(True, 0, False)
    values = np.unique(values)
    for d in range(MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(values, d) - values) <= 1e-9 * np.maximum(1.0, np.abs(values))):
            return NumStats(d == 0, d, True)
    return NumStats(False, MAX_DECIMALS, True)


@dataclass
class Folder:
    """A built datasets folder: its manifest and its datasets, in file-name order."""
    path: Path
    manifest: dict
    datasets: dict[str, DatasetFile]

    @property
    def as_of(self) -> str:
        """The data's own date (transfer date / data cut-off), the define's timestamp."""
        day = self.manifest.get("data_cutoff") or self.manifest.get("transfer_date")
        if not day or day == "None":
            raise DefineInputError("the manifest names neither data_cutoff nor transfer_date",
                                   file=self.path / MANIFEST,
                                   hint="rebuild the folder with the pipeline")
        return f"{day}T00:00:00"


def read_folder(path: Path) -> Folder:
    path = Path(path)
    if not path.is_dir():
        raise DefineInputError("datasets folder not found", file=path,
                               hint="pass an SDTM or ADaM folder as the pipeline writes it")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise DefineInputError(f"no {MANIFEST} in the datasets folder", file=path,
                               hint="pass a folder the pipeline wrote (it records the build there)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DefineInputError(f"not valid JSON ({exc})", file=manifest_path,
                               hint="rebuild the folder with the pipeline") from None
    listed = set(manifest.get("datasets") or {})
    names = sorted(p.stem.upper() for p in path.glob("*.xpt"))
    if not names:
        raise DefineInputError("no *.xpt datasets in the folder", file=path,
                               hint="pass an SDTM or ADaM folder as the pipeline writes it")
    for name in names:
        if name not in listed:
            raise DefineInputError(f"dataset {name} is not in the folder's manifest", file=path / f"{name.lower()}.xpt",
                                   record=name, hint="remove the stray file or rebuild the folder")
    for name in sorted(listed - set(names)):
        raise DefineInputError(f"the manifest lists {name} but its XPT file is missing",
                               file=manifest_path, record=name, hint="rebuild the folder")
    return Folder(path, manifest, {n: DatasetFile(path, n) for n in names})
