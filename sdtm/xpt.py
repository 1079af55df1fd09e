"""SAS XPT version 5 files, the FDA's transport format, written and read with pyreadstat.

Writing checks the transport limits first (`sdtm.conform.check_transport`): pyreadstat would
truncate long labels and write long or non-ASCII values without a word.

Character lengths: pyreadstat gives each character variable the byte length of its longest
value (at least 1), which is the FDA's advice (no padding to 200) — so there is nothing to set;
`tests/sdtm/test_xpt.py` reads the widths back to keep it that way. Numerics are 8 bytes.

Timestamps: pyreadstat writes the wall-clock time into the library and member headers; they
are replaced by a fixed `timestamp` so the same data always give the same bytes.

Reading never uses `pandas.read_sas` (it returns 5.4e-79 instead of 0 for some zeros).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

from clinpipe.errors import ClinpipeError
from edc.sas_format import _restamp, _sas_stamp
from sdtm.conform import check_transport

# SAS's epoch: a stamp that says "no real time" and keeps re-runs byte-identical
DEFAULT_TIMESTAMP = dt.datetime(1960, 1, 1)


@dataclass(frozen=True)
class XptMeta:
    """What an XPT file says about its dataset."""
    dataset: str
    label: str
    labels: dict[str, str]
    types: dict[str, str]      # 'Char' or 'Num'
    lengths: dict[str, int]    # storage width in bytes


def write_xpt(df: pd.DataFrame, path: str | Path, dataset: str, dataset_label: str,
              labels: dict[str, str], *, timestamp: dt.datetime | None = None,
              formats: dict[str, str] | None = None) -> Path:
    """Write `df` as the XPT v5 dataset `dataset` after checking the transport limits; the
    header's created/modified times are `timestamp` (default 1960-01-01T00:00:00). `formats`
    gives SAS display formats (ADaM's numeric dates: DATE9.)."""
    check_transport(df, dataset, labels, dataset_label)
    path = Path(path)
    pyreadstat.write_xport(df, str(path), file_label=dataset_label, table_name=dataset,
                           column_labels=[labels[c] for c in df.columns], file_format_version=5,
                           variable_format=formats or None)
    # the edc SAS writer's helpers: same header layout in v5 and v8
    _restamp(path, _sas_stamp((timestamp or DEFAULT_TIMESTAMP).isoformat()))
    return path


def _char(values: pd.Series) -> pd.Series:
    return values.where(values.notna(), "").astype(object)


def read_xpt(path: str | Path) -> tuple[pd.DataFrame, XptMeta]:
    """An XPT file as a frame (Char as str with '' for missing, Num as float64) and its
    metadata. SAS pads text with blanks, so trailing blanks do not survive a round trip."""
    path = Path(path)
    try:
        # numbers stay numbers even where a SAS format says date: SDTM dates are ISO text
        df, meta = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, OSError) as exc:
        raise ClinpipeError(f"not a readable SAS XPT file ({exc})", file=path) from None
    kinds = meta.readstat_variable_types
    types = {c: "Char" if kinds[c] == "string" else "Num" for c in df.columns}
    for c in df.columns:
        df[c] = _char(df[c]) if types[c] == "Char" else df[c].astype(np.float64)
    labels = {c: meta.column_names_to_labels.get(c) or "" for c in df.columns}
    return df, XptMeta(dataset=meta.table_name or "", label=meta.file_label or "", labels=labels,
                       types=types, lengths=dict(meta.variable_storage_width))
