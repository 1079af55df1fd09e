"""SAS deliveries: one `.sas7bdat` or `.xpt` dataset per form, read with pyreadstat.

(`pandas.read_sas` is not used: on real XPT files it returns 5.4e-79 for some zeros.)

A SAS dataset types what CSV keeps as text: numerics come back as floats, dates and
datetimes as SAS dates. The reader turns them back into the export text — numbers through
`format_number`, the one canonical rendering the CSV uses, dates as ISO 8601 — so the same
data read from CSV, ODM or SAS give equal frames. A partial date cannot be a SAS date; its
ISO text is re-derived from the `_RAW` column, as the EDC derived it in the first place.
SAS pads character values with blanks, so trailing blanks do not survive a SAS delivery.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

from clinpipe.errors import ExportError
from edc.dates import raw_to_iso
from edc.export import SYSTEM_LABELS, FormMetadata, check_columns, format_number, frames_for
from edc.forms import FormDef, FormsConfig

_NUMERIC_SYSTEM = ("FOLDERSEQ", "RECORDPOSITION", "RECORDID", "RECORDACTIVE")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def xpt_name(form_oid: str) -> str:
    return f"{form_oid.lower()}.xpt"


# -- writing (a CSV export re-delivered as SAS, for tests and demos) ----------------------

def _numeric(values: pd.Series) -> pd.Series | None:
    """Float column if every value is a number whose canonical text is exactly the value
    (so reading it back gives the same text); None keeps the column as character."""
    try:
        numbers = {u: float(u) for u in pd.unique(values) if u != ""}
    except ValueError:
        return None
    if any(not math.isfinite(f) or format_number(f) != u for u, f in numbers.items()):
        return None
    # float() rather than pd.to_numeric: pandas' fast parser can miss the last bit
    # ("0.30000000000000004" -> 0.3), and the text must survive exactly
    numbers[""] = math.nan
    return pd.Series([numbers[v] for v in values], index=values.index, dtype=float)


def _dates(iso: pd.Series, raw: pd.Series) -> pd.Series | None:
    """SAS dates if every full date is a real date and every other value is what the reader
    re-derives from the raw text; None keeps the column as character."""
    full = iso.str.match(_FULL_DATE.pattern).to_numpy(dtype=bool)
    if not full.any():
        return None
    pairs = pd.DataFrame({"iso": iso[~full], "raw": raw[~full]}).drop_duplicates()
    if any(raw_to_iso(r) != i for i, r in pairs.itertuples(index=False)):
        return None
    days = {}
    for u in pd.unique(iso[full]):
        try:
            days[u] = dt.date.fromisoformat(u)
        except ValueError:
            return None
    return pd.Series([days.get(v) for v in iso], index=iso.index, dtype=object)


def _datetimes(values: pd.Series) -> pd.Series | None:
    if not all(u == "" or _DATETIME.match(u) for u in pd.unique(values)):
        return None
    return pd.to_datetime(values.where(values != ""), format="%Y-%m-%dT%H:%M:%S", errors="coerce")


def _sas_frame(form: FormDef, df: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for column in form.columns():
        values = df[column]
        typed = None
        if column in _NUMERIC_SYSTEM:
            typed = _numeric(values)
        elif column == "LASTMODIFIED":
            typed = _datetimes(values)
        elif column in form.field_by_oid:
            fld = form.field_by_oid[column]
            if fld.type in ("integer", "float"):
                typed = _numeric(values)
            elif fld.type == "date":
                typed = _dates(values, df[f"{column}_RAW"])
        out[column] = values if typed is None else typed
    return pd.DataFrame(out, columns=form.columns())


def write_xpt(frames: dict[str, pd.DataFrame], forms: FormsConfig, outdir: Path) -> list[Path]:
    """One XPT version 8 file per form (version 8: names up to 32 characters, as `_RAW`
    columns need), numerics and dates typed as SAS would deliver them."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    pairs = frames_for(forms, frames)
    stamps = [s for _, df in pairs if not df.empty and (s := df["LASTMODIFIED"].max())]
    stamp = _sas_stamp(max(stamps) if stamps else "")
    paths = []
    for form, df in pairs:
        path = outdir / xpt_name(form.oid)
        labels = {**SYSTEM_LABELS, **form.labels()}
        pyreadstat.write_xport(_sas_frame(form, df), str(path), file_format_version=8,
                               table_name=form.oid, file_label=form.name,
                               column_labels=[labels[c] for c in form.columns()])
        _restamp(path, stamp)
        paths.append(path)
    return paths


def _sas_stamp(iso: str) -> bytes:
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        when = dt.datetime(2000, 1, 1)
    return when.strftime("%d%b%y:%H:%M:%S").upper().encode("ascii")


_XPT_STAMP = re.compile(rb"\d\d[A-Z]{3}\d\d:\d\d:\d\d:\d\d")
_XPT_HEADER = 560  # library and member headers: where the created/modified stamps live


def _restamp(path: Path, stamp: bytes) -> None:
    """pyreadstat stamps the wall-clock time into the headers; replace it with a time taken
    from the data so the same frames give a byte-identical file."""
    with open(path, "r+b") as handle:
        head = handle.read(_XPT_HEADER)
        handle.seek(0)
        handle.write(_XPT_STAMP.sub(stamp, head))


# -- reading --------------------------------------------------------------------------------

def _text(values: pd.Series) -> np.ndarray:
    """A column as export text, whatever type pyreadstat gave it."""
    kind = values.dtype.kind
    if kind == "M":  # numpy renders datetime64[s] as 'YYYY-MM-DDTHH:MM:SS' in C
        text = values.to_numpy().astype("datetime64[s]").astype(str).astype(object)
        text[values.isna().to_numpy()] = ""
        return text
    if kind == "f":
        return _numbers_text(values.to_numpy())
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return np.array([_cell(u) for u in uniques], dtype=object)[codes]


def _numbers_text(numbers: np.ndarray) -> np.ndarray:
    """format_number over a float column: whole numbers (ids, counts, most results) in one
    vectorised step, the rest through format_number by unique value."""
    out = np.full(len(numbers), "", dtype=object)
    finite = np.isfinite(numbers)
    whole = finite & (np.abs(numbers) < 2 ** 53)
    whole[whole] = numbers[whole] == np.floor(numbers[whole])
    out[whole] = numbers[whole].astype(np.int64).astype(str).astype(object)
    rest = ~whole & ~np.isnan(numbers)
    if rest.any():
        codes, uniques = pd.factorize(numbers[rest])
        out[rest] = np.array([format_number(u) for u in uniques], dtype=object)[codes]
    return out


def _cell(value) -> str:
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="seconds" if value.second else "minutes")
    return format_number(value)


def _reader(path: Path):
    return pyreadstat.read_xport if path.suffix.lower() == ".xpt" else pyreadstat.read_sas7bdat


def read_sas_form(path: Path, form: FormDef,
                  encoding: str | None = "utf-8") -> tuple[pd.DataFrame, FormMetadata]:
    """One form's SAS dataset as an export frame (unsorted) and the labels it carries."""
    path = Path(path)
    try:
        df, meta = _reader(path)(str(path), encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ExportError(f"text is not valid {exc.encoding}: byte 0x{exc.object[exc.start]:02x} "
                          f"in the value {exc.object[:40]!r}", file=path,
                          hint="read it with the real encoding, e.g. `--encoding cp1252` "
                               "(read_transfer(..., encoding='cp1252')), or ask for a UTF-8 "
                               "re-export") from None
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, OSError) as exc:
        raise ExportError(f"not a readable SAS {path.suffix} file ({exc})", file=path,
                          hint="check the file is a complete SAS transport/dataset; ask for a "
                               "re-transfer") from None
    stored = {name.upper(): kind for name, kind in meta.readstat_variable_types.items()}
    df.columns = [c.upper() for c in df.columns]
    check_columns(list(df.columns), form, path)
    cols = {column: _text(df[column]) for column in form.columns()}
    for fld in form.fields:
        if fld.type == "date" and stored.get(fld.oid) != "string":
            _fill_partial(cols[fld.oid], cols[f"{fld.oid}_RAW"])
    labels = {**SYSTEM_LABELS, **form.labels()}
    labels.update({k.upper(): v for k, v in (meta.column_names_to_labels or {}).items() if v})
    metadata = FormMetadata(form=form.oid, name=meta.file_label or form.name, labels=labels)
    return pd.DataFrame(cols, columns=form.columns()), metadata


def _fill_partial(iso: np.ndarray, raw: np.ndarray) -> None:
    """A SAS date column is missing where the site typed a partial date: restore the ISO text
    the EDC derived from the raw text."""
    gap = (iso == "") & (raw != "")
    if gap.any():
        iso[gap] = [raw_to_iso(r) for r in raw[gap]]


def peek_studyid(path: Path) -> str | None:
    try:
        df, _ = _reader(Path(path))(str(path), row_limit=1, usecols=["STUDYID"])
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, OSError, UnicodeDecodeError,
            KeyError):
        return None  # the full read reports the problem with its details
    return str(df["STUDYID"].iloc[0]) if len(df) and df["STUDYID"].iloc[0] else None
