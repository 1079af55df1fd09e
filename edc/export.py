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
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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


def build_frames(sim: SimulatedStudy, forms: FormsConfig, study: StudyConfig,
                 seed: int) -> dict[str, pd.DataFrame]:
    """One export frame per form (forms order; a form without records gives an empty frame).

    RECORDIDs follow entry order, as an EDC's sequence does: entry date (`_ENTRY`), then forms
    order and the simulator's order; the time of day is drawn from `seed`.
    """
    chunked = ChunkedFrames(forms, study, sim.transfer_date, seed)
    chunked.add(sim.records)
    return chunked.frames()


class ChunkedFrames:
    """The export frames of records handed over a group of whole subjects at a time (`add`),
    the same as `build_frames` of all of them at once (the groups in simulator order).

    What one group gives is kept as Arrow text columns, in memory or, with `spill` (a folder),
    in Arrow IPC files there, so what is held at a time is one group's records, not the
    study's. RECORDID and LASTMODIFIED depend on every record (entry order across the study,
    the seeded clock), so they are set once all groups are in (`finish`). Per form, each
    group's rows are kept in entry order; a frame is those runs merged by RECORDID, read back
    `rows` at a time (`windows`).
    """

    # rows per spilled record batch, and per window a frame is read back in: a window holds
    # about `window_rows` rows plus two batches of each group
    batch_rows = 2048
    window_rows = 65536

    def __init__(self, forms: FormsConfig, study: StudyConfig, transfer_date: dt.date, seed: int,
                 spill: Path | None = None):
        self.forms, self.study, self.seed = forms, study, seed
        self.default_entry = transfer_date.isoformat()
        self.spill = Path(spill) if spill is not None else None
        self.rows = {form.oid: 0 for form in forms.forms}
        self._folder_names: dict[str, str] = {}
        self._days: dict[str, int] = {}                     # entry day -> id, in order seen
        # per form, per group: the entry day id of each record in simulator order, then (after
        # `finish`) each row's RECORDID, day id and clock second in stored (entry) order
        self._day_ids: dict[str, list[np.ndarray]] = {f.oid: [] for f in forms.forms}
        self._parts: dict[str, list[Any]] = {f.oid: [] for f in forms.forms}
        self._ids: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] | None = None
        self._day_text: pa.Array | None = None

    @property
    def n_records(self) -> int:
        return sum(self.rows.values())

    def add(self, records: Mapping[str, list[dict[str, Any]]]) -> None:
        """The records of a group of whole subjects (simulator contract, `simulate/model.py`);
        a subject's records all in one group, groups in subject order."""
        if self._ids is not None:
            raise RuntimeError("records added after the export was finished")
        unknown = sorted(set(records) - set(self.forms.form_by_oid))
        if unknown:
            raise ValueError(f"simulated records for form(s) {unknown} that forms.yaml does not "
                             f"define")
        # Every form's records are checked before any is converted: a simulator bug is named
        # whatever else the group holds.
        values = [(form, len(recs), _values(form, recs)) for form in self.forms.forms
                  if (recs := records.get(form.oid))]
        for form, n, cols in values:
            self._add_form(form, n, cols)

    def _add_form(self, form: FormDef, n: int, values: dict[str, tuple]) -> None:
        entry = _entry_texts(values.get("_ENTRY"), n, self.default_entry)
        local, days = pd.factorize(entry, sort=True)
        for day in days:
            if day not in self._days:
                _check_entry(day)
                self._days[day] = len(self._days)
        self._day_ids[form.oid].append(np.array([self._days[d] for d in days],
                                                dtype=np.int32)[local])
        # Within the group, entry order is entry day then simulator order: the order RECORDID
        # will have, so RECORDPOSITION can be counted here (a subject is in one group).
        order = pa.array(np.argsort(local, kind="stable"))
        cols = _form_columns(form, values, n, self.forms, self.study, self._folder_names)
        cols = {c: a.take(order) for c, a in cols.items()}
        cols["RECORDPOSITION"] = _positions(cols["SUBJECT"], cols["FOLDER"], cols["FOLDERSEQ"])
        batch = pa.record_batch([cols[c] for c in _stored(form)], names=_stored(form))
        self.rows[form.oid] += n
        if self.spill is None:
            self._parts[form.oid].append(batch)
            return
        path = self.spill / f"{form.oid}.{len(self._parts[form.oid])}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
            for start in range(0, len(batch), self.batch_rows):
                writer.write_batch(batch.slice(start, self.batch_rows))
        self._parts[form.oid].append(path)

    def finish(self) -> None:
        """Number the records across the study: RECORDID in entry order, each entry day's seeded
        clock times handed out in that order (what `build_frames` has always done)."""
        if self._ids is not None:
            return
        vocab = sorted(self._days)
        rank = np.empty(len(vocab), dtype=np.int32)
        rank[[self._days[d] for d in vocab]] = np.arange(len(vocab), dtype=np.int32)
        self._day_text = pa.array(vocab, type=pa.string())
        runs = [ids for form in self.forms.forms for ids in self._day_ids[form.oid]]
        days = rank[np.concatenate(runs)] if runs else np.empty(0, dtype=np.int32)
        total = len(days)
        # Entry order: entry day, then forms order and the simulator's order within a day.
        order = np.argsort(days, kind="stable")
        drawn = np.random.default_rng(self.seed).integers(_DAY_START, _DAY_END, size=total)
        clock = np.empty(total, dtype=np.int32)
        clock[order] = drawn[np.lexsort((drawn, days))]
        del drawn
        record_id = np.empty(total, dtype=np.int64)
        record_id[order] = np.arange(1, total + 1)
        del order
        self._ids = {}
        start = 0
        for form in self.forms.forms:
            out = self._ids[form.oid] = []
            for ids in self._day_ids[form.oid]:
                part = slice(start, start + len(ids))
                start += len(ids)
                by_id = np.argsort(record_id[part])
                out.append((record_id[part][by_id], days[part][by_id], clock[part][by_id]))
            self._day_ids[form.oid] = []

    def windows(self, form: FormDef, rows: int | None = None) -> Iterator[pa.Table]:
        """The form's frame as Arrow text columns (form columns, RECORDID order), `rows`
        (default `window_rows`) at a time."""
        self.finish()
        rows = rows or self.window_rows
        runs = self._ids[form.oid]
        if not runs:
            return
        lengths = np.array([len(r[0]) for r in runs])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        by_id = np.argsort(np.concatenate([r[0] for r in runs]), kind="stable")
        run_of = np.repeat(np.arange(len(runs)), lengths)[by_id]
        row_of = by_id - starts[run_of]
        record_id = np.concatenate([r[0] for r in runs])[by_id]
        day = np.concatenate([r[1] for r in runs])[by_id]
        clock = np.concatenate([r[2] for r in runs])[by_id]
        del by_id
        readers: dict[int, Any] = {}
        try:
            for lo in range(0, len(run_of), rows):
                hi = min(lo + rows, len(run_of))
                yield self._window(form, runs, readers, run_of[lo:hi], row_of[lo:hi],
                                   record_id[lo:hi], day[lo:hi], clock[lo:hi])
        finally:
            for reader in readers.values():
                reader[0].close()

    def _window(self, form, runs, readers, run_of, row_of, record_id, day, clock) -> pa.Table:
        pieces, offset = [], {}
        position = 0
        for k in np.unique(run_of):
            rows = row_of[run_of == k]
            # the rows a run gives a window are consecutive: runs are merged in order
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            pieces.append(self._rows(form, int(k), lo, hi, readers))
            offset[int(k)] = position - lo
            position += hi - lo
        table = pa.concat_tables(pieces) if len(pieces) > 1 else pieces[0]
        shift = np.zeros(run_of.max() + 1, dtype=np.int64)
        for k, v in offset.items():
            shift[k] = v
        table = table.take(pa.array(row_of + shift[run_of]))
        columns = dict(zip(table.column_names, table.columns))
        columns["RECORDID"] = pc.cast(pa.array(record_id), pa.string())
        columns["LASTMODIFIED"] = pc.binary_join_element_wise(
            self._day_text.take(pa.array(day)), _clock_text().take(pa.array(clock)), "T")
        return pa.table([columns[c] for c in form.columns()], names=form.columns())

    def _rows(self, form: FormDef, k: int, lo: int, hi: int, readers: dict) -> pa.Table:
        part = self._parts[form.oid][k]
        if not isinstance(part, Path):
            return pa.Table.from_batches([part.slice(lo, hi - lo)])
        if k not in readers:
            source = pa.OSFile(str(part), "rb")
            readers[k] = (source, pa.ipc.open_file(source))
        reader = readers[k][1]
        first, last = lo // self.batch_rows, (hi - 1) // self.batch_rows
        table = pa.Table.from_batches([reader.get_batch(i) for i in range(first, last + 1)])
        return table.slice(lo - first * self.batch_rows, hi - lo)

    def frame(self, form: FormDef) -> pd.DataFrame:
        """One form's export frame (the contract above)."""
        tables = list(self.windows(form, rows=1 << 20))
        if not tables:
            return empty_frame(form)
        table = pa.concat_tables(tables)
        del tables
        return pd.DataFrame({c: _objects(table[c]) for c in form.columns()},
                            columns=form.columns())

    def frames(self) -> dict[str, pd.DataFrame]:
        return {form.oid: self.frame(form) for form in self.forms.forms}


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    """A text column as the frame's object array, one Python str per distinct value (cells
    repeat: a frame of millions of cells holds far fewer strings)."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    return encoded.dictionary.to_numpy(zero_copy_only=False)[encoded.indices.to_numpy()]


def _stored(form: FormDef) -> list[str]:
    """The columns a group's rows keep: all but those `ChunkedFrames.finish` sets."""
    return [c for c in form.columns() if c not in ("RECORDID", "LASTMODIFIED")]


def _entry_text(value: Any, default: str) -> str:
    if value is None or value == "":
        return default
    return value.isoformat()[:10] if isinstance(value, dt.date) else str(value)


def _entry_texts(values: tuple | None, n: int, default: str) -> np.ndarray:
    """Each record's entry day text (object array), `default` where none is given."""
    if values is None:
        return np.full(n, default, dtype=object)
    codes, uniques = _factorize(values)
    texts = np.array([_entry_text(u, default) for u in uniques] + [default], dtype=object)
    return texts[codes]


def _check_entry(day: str) -> None:
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"_ENTRY {day!r} is not an ISO date (YYYY-MM-DD)") from None


_REQUIRED_KEYS = ("SITEID", "SUBJECT", "FOLDER")


@functools.cache
def _clock_text() -> pa.StringArray:
    """HH:MM:SS of every second of a day: made when a transfer is written, not when a reader
    imports this module."""
    return pa.array([f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" for s in range(86400)],
                    type=pa.string())


def _values(form: FormDef, recs: list[dict[str, Any]]) -> dict[str, tuple]:
    """The records' values by key (None where a record lacks the key), after checking the keys
    are the form's: a simulator bug is named, never exported."""
    keys = set().union(*recs)
    extra = keys - RECORD_KEYS - set(form.field_by_oid)
    if extra:
        raise ValueError(f"form {form.oid}: simulated records carry key(s) {sorted(extra)} that "
                         f"are neither system keys {sorted(RECORD_KEYS)} nor fields of the form")
    wanted = [*_REQUIRED_KEYS, *(k for k in ("FOLDERSEQ", "RECORDACTIVE", "_ENTRY") if k in keys),
              *(f.oid for f in form.fields)]
    try:
        # The Recorder gives every record every field: a C-level pass per key.
        columns = {k: tuple(map(itemgetter(k), recs)) for k in wanted}
    except KeyError:
        columns = {k: tuple(r.get(k) for r in recs) for k in wanted}
    for key in _REQUIRED_KEYS:
        if not all(columns[key]):
            raise ValueError(f"form {form.oid}: a simulated record has no {key}")
    return columns


def _factorize(values: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values); None gets the code len(distinct)."""
    obj = np.empty(len(values), dtype=object)
    obj[:] = values
    codes, uniques = pd.factorize(obj)
    missing = codes < 0
    if missing.any() and any(v is not None for v in obj[missing]):
        # NaN is no None to to_text's callers (a date field shows "nan"): a value of its own
        index: dict[Any, int] = {}
        codes = np.fromiter((index.setdefault(v, len(index)) for v in obj), dtype=np.intp,
                            count=len(obj))
        return codes, np.array(list(index), dtype=object)
    codes[missing] = len(uniques)
    return codes, np.asarray(uniques, dtype=object)


def _text(values: tuple) -> pa.Array:
    """`to_text` of the values as an Arrow column. Text (and None) goes to Arrow as it is;
    anything else is formatted once per distinct value (1, 1.0 and True are one value with
    one text, "1")."""
    try:
        arr = pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        codes, uniques = _factorize(values)
        return pa.array(to_text(uniques) + [""], type=pa.string()).take(pa.array(codes))
    return arr.fill_null("") if arr.null_count else arr


def _lookup(codes: pa.Array, table: Mapping[str, str]) -> pa.Array:
    """`table.get(code, "")` of each code."""
    keys = pa.array(list(table), type=pa.string())
    found = pa.array([*table.values(), ""], type=pa.string())
    index = pc.index_in(codes, value_set=keys).fill_null(len(keys))
    return found.take(index)


def _positions(subject: pa.Array, folder: pa.Array, seq: pa.Array) -> pa.Array:
    """RECORDPOSITION: 1, 2, ... over each subject's records of one folder repeat, in order."""
    key = np.zeros(len(subject), dtype=np.int64)
    for column in (subject, folder, seq):
        enc = pc.dictionary_encode(column)
        key = key * len(enc.dictionary) + enc.indices.to_numpy()
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    step = np.arange(len(key))
    first = np.maximum.accumulate(np.where(np.r_[True, ordered[1:] != ordered[:-1]], step, 0))
    position = np.empty(len(key), dtype=np.int64)
    position[order] = step - first + 1
    numbers = pa.array([str(i) for i in range(int(position.max()) + 1)], type=pa.string())
    return numbers.take(pa.array(position))


def _form_columns(form: FormDef, values: dict[str, tuple], n: int, forms: FormsConfig,
                  study: StudyConfig, folder_names: dict[str, str]) -> dict[str, pa.Array]:
    """A form's export text columns in the records' order, all but RECORDPOSITION, RECORDID
    and LASTMODIFIED."""
    cols: dict[str, pa.Array] = {}
    cols["STUDYID"] = pa.array([study.study.studyid] * n, type=pa.string())
    cols["SITEID"] = _text(values["SITEID"])
    cols["SUBJECT"] = _text(values["SUBJECT"])
    cols["FOLDER"] = _text(values["FOLDER"])
    for folder in pc.unique(cols["FOLDER"]).to_pylist():
        if folder in folder_names:
            continue
        try:
            folder_names[folder] = study.folder_name(folder)
        except KeyError:
            raise ValueError(f"form {form.oid}: folder {folder!r} is neither a visit nor an "
                             f"edc_folders entry of study.yaml") from None
    cols["FOLDERNAME"] = _lookup(cols["FOLDER"], folder_names)
    seq = values.get("FOLDERSEQ")
    cols["FOLDERSEQ"] = (pa.array(["1"] * n, type=pa.string()) if seq is None
                         else _text(tuple(v or 1 for v in seq)))
    cols["FORM"] = pa.array([form.oid] * n, type=pa.string())
    active = values.get("RECORDACTIVE")
    cols["RECORDACTIVE"] = pa.array(["1"] * n if active is None else
                                    ["0" if v in (0, "0") else "1" for v in active],
                                    type=pa.string())
    for fld in form.fields:
        column = values[fld.oid]
        if fld.type == "date":
            codes, uniques = _factorize(column)
            pairs = [date_pair(v) for v in uniques] + [("", "")]
            codes = pa.array(codes)
            cols[f"{fld.oid}_RAW"] = pa.array([p[0] for p in pairs], type=pa.string()).take(codes)
            cols[fld.oid] = pa.array([p[1] for p in pairs], type=pa.string()).take(codes)
        elif fld.codelist:
            cols[fld.oid] = _text(column)
            cols[f"{fld.oid}_DEC"] = _lookup(cols[fld.oid], forms.codelists[fld.codelist])
        else:
            cols[fld.oid] = _text(column)
    return cols


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


__all__ = ["FRAME_DTYPE", "SYSTEM_COLUMNS", "SYSTEM_LABELS", "ChunkedFrames", "FormMetadata",
           "build_frames",
           "check_columns", "date_pair", "empty_frame", "finish_frame", "form_metadata",
           "format_number", "frames_for", "generator_version", "to_text"]
