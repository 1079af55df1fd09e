"""Export frames: the records an EDC holds, one text-only frame per form.

`build_frames` turns a simulator's clinical content into what an EDC export contains (see
`edc/forms.py` for the column conventions). Every writer takes these frames and every reader
returns them, so one seed exported as CSV, ODM or XPT reads back to equal frames.

Contract of a frame (`finish_frame` enforces it for every producer):
- columns exactly `FormDef.columns()`, in that order;
- dtype `object`, every cell a Python `str` ('' for missing) — the raw layer keeps the
  EDC's text and typing happens in SDTM;
- rows sorted by RECORDID (an integer unique across the export), index 0..n-1.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinpipe.config import StudyConfig
from clinpipe.errors import ExportError
from edc.dates import iso_to_raw, raw_to_iso
from edc.forms import SYSTEM_COLUMNS, FormDef, FormsConfig
from simulate.model import SYSTEM_KEYS, SimulatedStudy

FRAME_DTYPE = object

SYSTEM_LABELS = {
    "STUDYID": "Study identifier",
    "SITEID": "Site identifier",
    "SUBJECT": "Subject identifier",
    "FOLDER": "Folder (visit) OID",
    "FOLDERNAME": "Folder (visit) name",
    "FOLDERSEQ": "Folder repeat number",
    "FORM": "Form OID",
    "RECORDPOSITION": "Record position within form",
    "RECORDID": "EDC record identifier",
    "RECORDACTIVE": "Record active (1) or inactivated (0)",
    "LASTMODIFIED": "Date/time record last modified",
}

# A record may also carry RECORDACTIVE (0/"0"/False) so the simulator can inject records a
# site later inactivated; everything else outside the form's fields is a simulator bug.
RECORD_KEYS = frozenset(SYSTEM_KEYS) | {"RECORDACTIVE"}

# Sites enter data in working hours; the time of day is drawn from the seed so LASTMODIFIED
# is deterministic without the simulator having to invent clock times.
_DAY_START, _DAY_END = 8 * 3600, 19 * 3600
_CLOCK = np.array([f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" for s in range(86400)],
                  dtype=object)
_ISO_DATE = re.compile(r"^\d{4}(?:-(?:0[1-9]|1[0-2])(?:-\d{2})?)?$")


def generator_version() -> str:
    """What wrote a file, for manifests and ODM headers."""
    try:
        return f"clinpipe {metadata.version('clinpipe')}"
    except metadata.PackageNotFoundError:
        return "clinpipe (not installed)"


def format_number(value: Any) -> str:
    """The one canonical text of a number: integral values without '.0', other floats as the
    shortest text that round-trips, never an exponent. '' for None/NaN; text passes through.

    Used by the exporter and by the SAS reader, so a SAS numeric reads back to the text the
    CSV carries (70 -> "70", 37.5 -> "37.5", 1e-05 -> "0.00001").
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    number = float(value)
    if math.isnan(number):
        return ""
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if number.is_integer():
        return str(int(number))
    return np.format_float_positional(number, unique=True, trim="-")


def to_text(values: Iterable[Any]) -> list[str]:
    """Cell values as export text (str kept, None -> '', numbers via format_number)."""
    return [v if v.__class__ is str else "" if v is None else format_number(v) for v in values]


def date_pair(value: Any) -> tuple[str, str]:
    """(raw text as the site typed it, ISO 8601 the EDC parsed from it) for a simulator date.

    ISO is re-derived from the raw text rather than copied, so an impossible date such as
    '2025-02-30' shows '30 FEB 2025' with an empty parsed column, as a real EDC shows it.
    Text that is not ISO at all is taken as what the site typed.
    """
    if value is None or value == "":
        return "", ""
    if isinstance(value, dt.date):
        value = value.isoformat()[:10]
    text = str(value)
    raw = iso_to_raw(text) if _ISO_DATE.match(text) else text
    return raw, raw_to_iso(raw)


@dataclass(frozen=True)
class FormMetadata:
    """What the delivery says about a form: its name, column labels and the codelists used
    (`field_codelists` field OID -> codelist name, `codelists` name -> {code: decode})."""
    form: str
    name: str
    labels: dict[str, str]
    field_codelists: dict[str, str] = field(default_factory=dict)
    codelists: dict[str, dict[str, str]] = field(default_factory=dict)


def form_metadata(form: FormDef, forms: FormsConfig) -> FormMetadata:
    """Metadata from forms.yaml (for deliveries that carry none of their own, like CSV)."""
    used = {f.oid: f.codelist for f in form.fields if f.codelist}
    return FormMetadata(form=form.oid, name=form.name,
                        labels={**SYSTEM_LABELS, **form.labels()},
                        field_codelists=used,
                        codelists={name: dict(forms.codelists[name])
                                   for name in sorted(set(used.values()))})


def empty_frame(form: FormDef) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=FRAME_DTYPE) for c in form.columns()})


def finish_frame(df: pd.DataFrame, form: FormDef) -> pd.DataFrame:
    """Impose the frame contract: form columns in order, object dtype, sorted by RECORDID.

    RECORDID must already be checked to be integer text (the readers do that first)."""
    if df.empty:
        return empty_frame(form)
    # each step copies every cell of a frame that may hold millions: only when needed
    if list(df.columns) != form.columns():
        df = df.reindex(columns=form.columns(), fill_value="")
    if (df.dtypes != FRAME_DTYPE).any():
        df = df.astype(FRAME_DTYPE)
    ids = df["RECORDID"].astype(np.int64).to_numpy()
    if not (ids[1:] >= ids[:-1]).all():
        df = df.iloc[np.argsort(ids, kind="stable")]
    if not df.index.equals(pd.RangeIndex(len(df))):
        df = df.reset_index(drop=True)
    return df


def _column(values: list[str] | np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def build_frames(sim: SimulatedStudy, forms: FormsConfig, study: StudyConfig,
                 seed: int) -> dict[str, pd.DataFrame]:
    """One export frame per form (forms order; a form without records gives an empty frame).

    RECORDIDs follow entry order, as an EDC's sequence does: entry date (`_ENTRY`), then forms
    order and the simulator's order; the time of day is drawn from `seed`.
    """
    unknown = sorted(set(sim.records) - set(forms.form_by_oid))
    if unknown:
        raise ValueError(f"simulated records for form(s) {unknown} that forms.yaml does not define")
    per_form = [(form, sim.records.get(form.oid) or []) for form in forms.forms]
    for form, recs in per_form:
        _check_keys(form, recs)

    sizes = [len(recs) for _, recs in per_form]
    total = sum(sizes)
    default_entry = sim.transfer_date.isoformat()
    entry = np.empty(total, dtype=object)
    entry[:] = [_entry_text(r.get("_ENTRY"), default_entry) for _, recs in per_form for r in recs]
    entry_codes, entry_days = pd.factorize(entry, sort=True)
    for day in entry_days:
        _check_entry(day)
    # Entry order: entry day, then forms order and the simulator's order within a day; each
    # day's seeded clock times are handed out in that order, so RECORDID, LASTMODIFIED and
    # RECORDPOSITION all follow it.
    order = np.argsort(entry_codes, kind="stable")
    drawn = np.random.default_rng(seed).integers(_DAY_START, _DAY_END, size=total)
    clock = np.empty(total, dtype=np.int64)
    clock[order] = drawn[np.lexsort((drawn, entry_codes))]
    record_id = np.empty(total, dtype=np.int64)
    record_id[order] = np.arange(1, total + 1)
    last_modified = np.asarray(entry_days, dtype=object)[entry_codes] + "T" + _CLOCK[clock]

    frames: dict[str, pd.DataFrame] = {}
    start = 0
    folder_names: dict[str, str] = {}
    for (form, recs), n in zip(per_form, sizes):
        part = slice(start, start + n)
        start += n
        if not n:
            frames[form.oid] = empty_frame(form)
            continue
        by_id = np.argsort(record_id[part], kind="stable")
        frames[form.oid] = _form_frame(form, [recs[i] for i in by_id], record_id[part][by_id],
                                       last_modified[part][by_id], forms, study, folder_names)
    return frames


def _entry_text(value: Any, default: str) -> str:
    if value is None or value == "":
        return default
    return value.isoformat()[:10] if isinstance(value, dt.date) else str(value)


def _check_entry(day: str) -> None:
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"_ENTRY {day!r} is not an ISO date (YYYY-MM-DD)") from None


def _check_keys(form: FormDef, recs: list[dict[str, Any]]) -> None:
    if not recs:
        return
    allowed = RECORD_KEYS | set(form.field_by_oid)
    extra = set().union(*recs) - allowed
    if extra:
        raise ValueError(f"form {form.oid}: simulated records carry key(s) {sorted(extra)} that "
                         f"are neither system keys {sorted(RECORD_KEYS)} nor fields of the form")
    for key in ("SITEID", "SUBJECT", "FOLDER"):
        if any(not r.get(key) for r in recs):
            raise ValueError(f"form {form.oid}: a simulated record has no {key}")


def _form_frame(form: FormDef, recs: list[dict[str, Any]], record_id: np.ndarray,
                last_modified: np.ndarray, forms: FormsConfig, study: StudyConfig,
                folder_names: dict[str, str]) -> pd.DataFrame:
    n = len(recs)
    cols: dict[str, np.ndarray] = {}
    cols["STUDYID"] = _column([study.study.studyid] * n)
    cols["SITEID"] = _column(to_text(r["SITEID"] for r in recs))
    cols["SUBJECT"] = _column(to_text(r["SUBJECT"] for r in recs))
    cols["FOLDER"] = _column(to_text(r["FOLDER"] for r in recs))
    for folder in set(cols["FOLDER"]) - set(folder_names):
        try:
            folder_names[folder] = study.folder_name(folder)
        except KeyError:
            raise ValueError(f"form {form.oid}: folder {folder!r} is neither a visit nor an "
                             f"edc_folders entry of study.yaml") from None
    cols["FOLDERNAME"] = _column([folder_names[f] for f in cols["FOLDER"]])
    cols["FOLDERSEQ"] = _column(to_text(r.get("FOLDERSEQ") or 1 for r in recs))
    cols["FORM"] = _column([form.oid] * n)
    keys = pd.DataFrame({k: cols[k] for k in ("SUBJECT", "FOLDER", "FOLDERSEQ")})
    position = keys.groupby(list(keys.columns), sort=False).cumcount().to_numpy() + 1
    numbers = np.array([str(i) for i in range(position.max() + 1)], dtype=object)
    cols["RECORDPOSITION"] = numbers[position]
    cols["RECORDID"] = _column([str(i) for i in record_id.tolist()])
    cols["RECORDACTIVE"] = _column(["0" if r.get("RECORDACTIVE", 1) in (0, "0") else "1"
                                    for r in recs])
    cols["LASTMODIFIED"] = last_modified
    for fld in form.fields:
        values = [r.get(fld.oid) for r in recs]
        if fld.type == "date":
            pairs = {v: date_pair(v) for v in set(values)}
            cols[f"{fld.oid}_RAW"] = _column([pairs[v][0] for v in values])
            cols[fld.oid] = _column([pairs[v][1] for v in values])
        elif fld.codelist:
            codes = to_text(values)
            decode = forms.codelists[fld.codelist]
            cols[fld.oid] = _column(codes)
            cols[f"{fld.oid}_DEC"] = _column([decode.get(c, "") for c in codes])
        else:
            cols[fld.oid] = _column(to_text(values))
    return pd.DataFrame(cols, columns=form.columns())


def frames_for(forms: FormsConfig,
               frames: Mapping[str, pd.DataFrame]) -> list[tuple[FormDef, pd.DataFrame]]:
    """(form, frame) in forms order, an empty frame for a form the mapping lacks."""
    return [(form, frames[form.oid] if form.oid in frames else empty_frame(form))
            for form in forms.forms]


def check_columns(header: list[str], form: FormDef, path: Path) -> None:
    """Fatal column problems of a delivered file: a column repeated, a system column missing,
    a column forms.yaml does not define, a forms.yaml column missing."""
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise ExportError(f"header repeats column(s) {dupes}", file=path, field=dupes[0],
                          hint="each column must appear once")
    lacking = [c for c in SYSTEM_COLUMNS if c not in header]
    if lacking:
        raise ExportError(f"header lacks system column(s) {lacking}", file=path, field=lacking[0],
                          hint=f"an EDC export must carry {list(SYSTEM_COLUMNS)}")
    expected = form.columns()
    undefined = [c for c in header if c not in expected]
    if undefined:
        raise ExportError(f"column {undefined[0]} is not defined for form {form.oid} in forms.yaml"
                          + (f" (also {undefined[1:]})" if len(undefined) > 1 else ""),
                          file=path, field=undefined[0],
                          hint="add the field to the study's forms.yaml or drop the column")
    missing = [c for c in expected if c not in header]
    if missing:
        raise ExportError(f"header lacks column(s) {missing} that forms.yaml defines for form "
                          f"{form.oid}",
                          file=path, field=missing[0],
                          hint="re-export with the current EDC build or update forms.yaml")


__all__ = ["FRAME_DTYPE", "SYSTEM_COLUMNS", "SYSTEM_LABELS", "FormMetadata", "build_frames",
           "check_columns", "date_pair", "empty_frame", "finish_frame", "form_metadata",
           "format_number", "frames_for", "generator_version", "to_text"]
