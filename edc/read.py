"""Read one raw EDC transfer (CSV per form, one ODM file, or SAS per form) into export frames.

`read_transfer` is the only entry point. What it returns does not depend on the format: the
same data delivered as CSV, ODM or XPT give equal frames (see `edc/export.py`).

Two kinds of problems:
- fatal (ExportError naming file, row/field and what to do): the delivery cannot be read as
  delivered — missing/empty folder, unknown or mixed formats, unreadable or wrongly encoded
  file, truncated or ill-formed file, header/metadata that do not match forms.yaml, broken
  system columns, a file that disagrees with transfer.json;
- findings (`ReaderFinding`, kinds in FINDING_KINDS): the data are readable but something in
  them needs attention downstream. Data-quality kinds are reported for active records only:
  an inactivated record is itself a finding and goes no further.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clinpipe.errors import ExportError
from edc.codes import factorize
from edc.csv_format import peek_studyid as peek_csv
from edc.csv_format import read_csv_table
from edc.dates import raw_to_iso
from edc.export import FormMetadata, empty_frame, finish_frame, form_metadata
from edc.forms import FormDef, FormsConfig, load_forms
from edc.odm_format import peek_study as peek_odm
from edc.odm_format import read_odm
from edc.sas_format import peek_studyid as peek_sas
from edc.sas_format import read_sas_form
from edc.transfer import (
    MANIFEST_NAME,
    Manifest,
    check_hashes,
    check_rows,
    file_sha256,
    load_manifest,
)

FINDING_KINDS = ("unknown_code", "impossible_date", "missing_required", "out_of_range",
                 "duplicate_record", "inactivated_record", "orphan_subject", "non_ascii",
                 "long_text", "inconsistent_date")
FORMATS = ("csv", "odm", "sas")
_SUFFIX_FORMAT = {".csv": "csv", ".xml": "odm", ".xpt": "sas", ".sas7bdat": "sas"}
_TEXT_LIMIT = 200  # SDTM XPT v5 holds at most 200 bytes per value
_DELIVER = "deliver CSV per form, one ODM .xml file, or .xpt/.sas7bdat per form"
_CORRECTED = "ask for a corrected export"


@dataclass(frozen=True)
class ReaderFinding:
    file: str
    form: str
    record: str       # RECORDID
    subject: str
    field: str
    value: str
    kind: str
    message: str


_SUMMARY = ["form", "name", "records", "active", "inactive", "subjects", "findings"]


@dataclass
class RawTransfer:
    study: str
    transfer_dir: Path
    transfer_date: dt.date | None
    format: str                                # 'csv', 'odm' or 'sas'
    frames: dict[str, pd.DataFrame]            # forms order, every form (empty if not delivered)
    metadata: dict[str, FormMetadata]
    file_hashes: dict[str, str]                # path relative to transfer_dir -> sha256
    findings: list[ReaderFinding]
    sources: dict[str, str] = field(default_factory=dict)   # form -> file it was read from
    forms: FormsConfig | None = None

    def summary(self) -> pd.DataFrame:
        counts = Counter(f.form for f in self.findings)
        rows = []
        for oid, df in self.frames.items():
            active = int((df["RECORDACTIVE"] != "0").sum())
            rows.append((oid, self.metadata[oid].name if oid in self.metadata else "", len(df), active, len(df) - active, int(df["SUBJECT"].nunique()),
                         counts.get(oid, 0)))
        return pd.DataFrame(rows, columns=_SUMMARY)

    def findings_frame(self) -> pd.DataFrame:
        return pd.DataFrame([f.__dict__ for f in self.findings],
                            columns=list(ReaderFinding.__annotations__))


def read_transfer(path: str | Path, study: str | None = None, format: str = "auto",
                  encoding: str = "utf-8", forms: FormsConfig | None = None) -> RawTransfer:
    """Read a transfer folder (or one ODM file). `format` is 'auto', 'csv', 'odm' or 'sas';
    `encoding` is the text encoding of CSV/XPT files (ODM files declare their own; a
    non-UTF-8 value here overrides the declaration). `forms` defaults to the study's
    forms.yaml; `study` defaults to transfer.json, then the data themselves."""
    path = Path(path)
    transfer_dir, fmt, files = _locate(path, format)
    manifest = load_manifest(transfer_dir)
    with ThreadPoolExecutor(max_workers=2) as pool:     # hashlib hashes outside the GIL
        hashes = dict(zip((_rel(p, transfer_dir) for p in files), pool.map(file_sha256, files)))
    if manifest is not None:  # before parsing: a damaged file is named as such, not mis-parsed
        check_hashes(manifest, hashes, complete=path.is_dir())
    study = study or (manifest.study if manifest else None) or _peek_study(files, fmt, encoding)
    if not study:
        raise ExportError("cannot tell which study the transfer belongs to (no transfer.json, "
                          "no data rows)", file=transfer_dir,
                          hint="pass the study explicitly (read_transfer(..., study=...))")
    forms = forms or load_forms(study)

    texts: dict[str, dict[str, pa.ChunkedArray]] = {}
    if fmt == "odm":
        raw, metadata, sources = _read_odm(files[0], transfer_dir, forms, encoding, manifest)
    else:
        raw, metadata, sources = _read_per_form(files, transfer_dir, fmt, forms, encoding, manifest,
                                                texts)
    ids = {oid: _check_system(df, forms.form(oid), transfer_dir / sources[oid], study, texts.get(oid))
           for oid, df in raw.items()}
    _check_unique_ids(ids, sources, transfer_dir)
    frames = {form.oid: finish_frame(raw[form.oid], form) if form.oid in raw else empty_frame(form)
              for form in forms.forms}
    metadata = {f.oid: metadata.get(f.oid) or form_metadata(f, forms) for f in forms.forms}
    return RawTransfer(study=study, transfer_dir=transfer_dir,
                       transfer_date=_transfer_date(transfer_dir, manifest), format=fmt,
                       frames=frames, metadata=metadata, file_hashes=hashes,
                       findings=find_problems(frames, forms, sources), sources=sources, forms=forms)


# -- locating the files ---------------------------------------------------------------------

def _rel(p: Path, base: Path) -> str:
    return p.relative_to(base).as_posix()


def _locate(path: Path, format: str) -> tuple[Path, str, list[Path]]:
    """(transfer folder, format, data files) — or the fatal reason there are none to read."""
    if format != "auto" and format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}", file=path,
                          hint=f"use one of {('auto',) + FORMATS}")
    if not path.exists():
        raise ExportError("transfer folder not found", file=path,
                          hint="check the path; a transfer is a folder per delivery, e.g. "
                               "data/raw/<STUDY>/<YYYY-MM-DD>/")
    if path.is_file():
        fmt = _SUFFIX_FORMAT.get(path.suffix.lower())
        if fmt is None or (format != "auto" and fmt != format):
            raise ExportError(f"unknown export format (file type {path.suffix or 'none'!r})",
                              file=path, hint=_DELIVER)
        return path.parent, fmt, [path]
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST_NAME)
    if not files:
        raise ExportError("transfer folder is empty", file=path,
                          hint="the EDC export did not arrive: ask for the transfer again")
    names = [p.name for p in files]
    by_format: dict[str, list[Path]] = {}
    for p in files:
        if p.suffix.lower() in _SUFFIX_FORMAT:
            by_format.setdefault(_SUFFIX_FORMAT[p.suffix.lower()], []).append(p)
    if format != "auto":
        if format not in by_format:
            raise ExportError(f"no {format} files in the folder (found {names[:10]})", file=path,
                              hint="check the format or the folder")
        chosen = format
    elif not by_format:
        raise ExportError(f"unknown export format: no .csv, .xml, .xpt or .sas7bdat files "
                          f"(found {names[:10]})", file=path, hint=_DELIVER)
    elif len(by_format) > 1:
        found = {fmt: [p.name for p in ps][:5] for fmt, ps in sorted(by_format.items())}
        raise ExportError(f"mixed export formats in one transfer: {found}", file=path,
                          hint="keep one format per transfer folder, or pass format= to choose one")
    else:
        chosen = next(iter(by_format))
    chosen_files = by_format[chosen]
    if chosen == "odm" and len(chosen_files) > 1:
        raise ExportError(f"more than one ODM file: {[p.name for p in chosen_files]}", file=path,
                          hint="an ODM transfer is one snapshot file; remove the others")
    return path, chosen, chosen_files


def _peek_study(files: list[Path], fmt: str, encoding: str) -> str | None:
    for p in files:
        if fmt == "odm":
            found = peek_odm(p)
        else:
            found = peek_csv(p, encoding) if fmt == "csv" else peek_sas(p)
        if found:
            return found
    return None


def _transfer_date(transfer_dir: Path, manifest: Manifest | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(transfer_dir.name)
    except ValueError:
        return manifest.transfer_date if manifest else None


# -- reading --------------------------------------------------------------------------------

def _read_odm(path: Path, transfer_dir: Path, forms: FormsConfig, encoding: str,
              manifest: Manifest | None):
    content = read_odm(path, forms, encoding)
    rel = _rel(path, transfer_dir)
    if manifest is not None:
        check_rows(manifest, rel, content.records)
    return content.frames, dict(content.metadata), {form.oid: rel for form in forms.forms}


def _read_per_form(files: list[Path], transfer_dir: Path, fmt: str, forms: FormsConfig,
                   encoding: str, manifest: Manifest | None,
                   texts: dict[str, dict[str, pa.ChunkedArray]] | None = None):
    """Each file read once. For CSV, the Arrow text of the integer system columns is kept in
    `texts` (form -> column -> text) for `_check_system`."""
    raw, metadata, sources = {}, {}, {}
    for p in files:
        oid = p.stem.upper()
        rel = _rel(p, transfer_dir)
        if oid not in forms.form_by_oid:
            raise ExportError(f"form {oid} (from the file name) is not defined in forms.yaml",
                              file=p, hint=f"name files <form>{p.suffix}; known forms are "
                                           f"{sorted(forms.form_by_oid)}")
        if oid in raw:
            raise ExportError(f"form {oid} is delivered twice ({sources[oid]} and {rel})", file=p,
                              hint="keep one file per form")
        form = forms.form(oid)
        base = form_metadata(form, forms)
        if fmt == "csv":
            table = read_csv_table(p, form, encoding)
            if texts is not None:
                texts[oid] = {c: table.column(c) for c in _INTEGER_COLUMNS}
            # self_destruct frees each Arrow column once converted: the peak holds one copy
            df, metadata[oid] = table.to_pandas(split_blocks=True, self_destruct=True), base
            del table
        else:
            # a sas7bdat names its own encoding: only an explicit non-UTF-8 choice overrides it
            own = p.suffix.lower() == ".sas7bdat" and encoding.lower() in ("utf-8", "utf8")
            df, meta = read_sas_form(p, form, None if own else encoding)
            metadata[oid] = FormMetadata(oid, meta.name, {**base.labels, **meta.labels},
                                         base.field_codelists, base.codelists)
        if manifest is not None:
            check_rows(manifest, rel, len(df))
        raw[oid], sources[oid] = df, rel
    return raw, metadata, sources


# Text that is certainly a whole number >= 0 (>= 1): plain ASCII digits, few enough to be
# exact. Everything else goes the general way (pandas to_numeric), which accepts more.
_PLAIN = {0: r"^[0-9]{1,18}$", 1: r"^0*[1-9][0-9]{0,17}$"}


_INTEGER_COLUMNS = ("RECORDID", "FOLDERSEQ", "RECORDPOSITION")


def _plain_integers(values: pd.Series, minimum: int, text: pa.ChunkedArray | None = None
                    ) -> tuple[np.ndarray, pa.Array | pa.ChunkedArray | None]:
    """(mask of plain integer texts, the values as Arrow text), in Arrow's C++ kernels; no
    mask (all False) when the values are not all text. `text`: the values' Arrow text when
    the reader has it already."""
    if text is None:
        try:
            text = pa.array(values.to_numpy(), type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return np.zeros(len(values), dtype=bool), None
    plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN[minimum]), False)
    return plain.to_numpy(zero_copy_only=False), text


def _integers(values: pd.Series, minimum: int, text: pa.ChunkedArray | None = None) -> np.ndarray:
    """Mask of values that are not whole numbers >= minimum."""
    plain, _ = _plain_integers(values, minimum, text)
    return _not_integers(values, minimum, plain)


def _not_integers(values: pd.Series, minimum: int, plain: np.ndarray) -> np.ndarray:
    bad = np.zeros(len(values), dtype=bool)
    other = ~plain
    if other.any():
        numbers = pd.to_numeric(values[other], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad[other] = ~(np.isfinite(numbers) & (numbers % 1 == 0) & (numbers >= minimum))
    return bad


def _check_system(df: pd.DataFrame, form: FormDef, path: Path, study: str,
                  texts: dict[str, pa.ChunkedArray] | None = None) -> np.ndarray | None:
    """The system columns carry the record keys everything downstream relies on. Returns the
    RECORDIDs as numbers (None for an empty form) for the transfer-wide uniqueness check.
    `texts`: Arrow text of the integer columns, when the reader has it."""
    if df.empty:
        return None
    texts = texts or {}
    plain_ids, id_text = _plain_integers(df["RECORDID"], 0, texts.get("RECORDID"))
    checks = [
        ("STUDYID", df["STUDYID"].to_numpy() != study, f"is another study (expected {study})",
         "read the transfer with the right study, or ask the data manager"),
        ("FORM", df["FORM"].to_numpy() != form.oid, f"names another form (expected {form.oid})",
         f"one form per file: {_CORRECTED}"),
        ("SUBJECT", df["SUBJECT"].to_numpy() == "", "is empty", "every record needs its subject"),
        ("SITEID", df["SITEID"].to_numpy() == "", "is empty", "every record needs its site"),
        ("FOLDER", df["FOLDER"].to_numpy() == "", "is empty", "every record needs its folder"),
        ("RECORDID", lambda: _not_integers(df["RECORDID"], 0, plain_ids), "is not an integer record id",
         f"RECORDID identifies the record for traceability: {_CORRECTED}"),
        ("FOLDERSEQ", lambda: _integers(df["FOLDERSEQ"], 1, texts.get("FOLDERSEQ")),
         "is not a positive integer", _CORRECTED),
        ("RECORDPOSITION", lambda: _integers(df["RECORDPOSITION"], 1, texts.get("RECORDPOSITION")),
         "is not a positive integer", _CORRECTED),
        ("RECORDACTIVE", ~df["RECORDACTIVE"].isin(("0", "1")).to_numpy(), "is not 0 or 1",
         "RECORDACTIVE is 1 for active, 0 for inactivated records"),
    ]
    for column, bad, what, hint in checks:
        bad = bad() if callable(bad) else bad
        if bad.any():
            i = int(np.argmax(bad))
            rid = df["RECORDID"].iloc[i]
            value, count = df[column].iloc[i], int(bad.sum())
            raise ExportError(f"{column} {value!r} {what} ({count} record(s))", file=path, record=f"RECORDID {rid}" if rid else f"row {i + 1}",
                              field=column, hint=hint)
    if plain_ids.all():
        return np.asarray(pc.cast(id_text, pa.int64()).to_numpy(), dtype=np.int64)
    return pd.to_numeric(df["RECORDID"]).to_numpy()


def _check_unique_ids(ids: dict[str, np.ndarray | None], sources: dict[str, str],
                      transfer_dir: Path) -> None:
    parts = [pd.DataFrame({"id": numbers, "form": oid}) for oid, numbers in ids.items()
             if numbers is not None]
    if not parts:
        return
    ids = pd.concat(parts, ignore_index=True)
    dup = ids.duplicated("id", keep=False).to_numpy()
    if dup.any():
        clash = ids[dup].sort_values("id").head(2)
        rid, where = int(clash["id"].iloc[0]), sorted(set(clash["form"]))
        raise ExportError(f"RECORDID {rid} is used by more than one record (forms {where})",
                          file=transfer_dir / sources[where[0]], record=f"RECORDID {rid}",
                          field="RECORDID",
                          hint=f"RECORDID must be unique across the transfer: {_CORRECTED}")


# -- findings -------------------------------------------------------------------------------

def find_problems(frames: dict[str, pd.DataFrame], forms: FormsConfig,
                  sources: dict[str, str]) -> list[ReaderFinding]:
    """All non-fatal findings, form by form (forms order), then orphan subjects."""
    out: list[ReaderFinding] = []
    for form in forms.forms:
        df = frames[form.oid]
        if not df.empty:
            out.extend(_FormCheck(df, form, forms, sources.get(form.oid, "")).run())
    out.extend(_orphans(frames, forms, sources))
    return out


class _Column:
    """One column as a code per row into its distinct values: a check runs once per distinct
    value and its answer is taken back to the rows by code (a form repeats a few hundred
    texts over many thousand records)."""

    def __init__(self, values: pd.Series):
        self.codes, uniques = factorize(values)
        self.distinct = pd.Series(uniques, dtype=values.dtype)

    def rows(self, per_value) -> np.ndarray:
        """A per-distinct-value answer (array or Series) as one per row."""
        return np.asarray(per_value)[self.codes]


class _FormCheck:
    """Vectorised checks of one form: masks over the frame, findings only for flagged cells.
    Data checks look at active records only."""

    def __init__(self, df: pd.DataFrame, form: FormDef, forms: FormsConfig, file: str):
        self.df, self.form, self.forms, self.file = df, form, forms, file
        self.active = (df["RECORDACTIVE"] != "0").to_numpy()
        self.ids = df["RECORDID"].to_numpy()
        self.subjects = df["SUBJECT"].to_numpy()
        self.out: list[ReaderFinding] = []
        # active rows and a 64-bit hash of their subject, folder and entered values, folded in
        # column by column as the checks encode them (no column's codes are kept)
        self.rows = np.flatnonzero(self.active)
        self.hashed = np.zeros(len(self.rows), dtype=np.uint64)

    def fold(self, column: _Column) -> None:
        # wrapping multiply-add: a collision only adds a candidate the exact check drops
        self.hashed = self.hashed * np.uint64(1_000_003) + column.codes[self.rows].astype(np.uint64)

    def add(self, mask: np.ndarray, kind: str, column: str, message) -> None:
        """One finding per flagged row; `message` is text or a function of the value."""
        values = self.df[column].to_numpy()
        for i in np.flatnonzero(mask):
            text = message(values[i]) if callable(message) else message
            self.out.append(ReaderFinding(self.file, self.form.oid, self.ids[i], self.subjects[i],
                                          column, values[i], kind, text))

    def run(self) -> list[ReaderFinding]:
        self.add(~self.active, "inactivated_record", "RECORDACTIVE",
                 "record was inactivated in the EDC (RECORDACTIVE 0); it is not used downstream")
        self.fold(_Column(self.df["SUBJECT"]))
        self.fold(_Column(self.df["FOLDER"]))
        for fld in self.form.fields:
            entered = f"{fld.oid}_RAW" if fld.type == "date" else fld.oid  # what the site typed
            values = _Column(self.df[entered])
            self.fold(values)
            filled = (values.distinct != "").to_numpy()
            if fld.required:
                self.add(self.active & ~values.rows(filled), "missing_required", entered,
                         "required field is empty")
            if fld.codelist:
                self._codes(fld.codelist, values, filled, entered)
            if fld.type == "date":
                self._dates(values, filled, entered, fld.oid)
            if fld.type in ("integer", "float"):
                self._numbers(fld, values, filled)
            if fld.type == "text" and not fld.codelist:
                self._length(values, min(fld.length, _TEXT_LIMIT), entered)
            self._ascii(values, entered)
        self._duplicates()
        return self.out

    def _codes(self, name: str, values: _Column, filled: np.ndarray, column: str) -> None:
        codelist = self.forms.codelists[name]
        known = values.distinct.isin(list(codelist)).to_numpy()
        shown = ", ".join(list(codelist)[:12]) + (", ..." if len(codelist) > 12 else "")
        self.add(self.active & values.rows(filled & ~known), "unknown_code", column,
                 lambda v: f"code {v!r} is not in codelist {name} ({shown})")

    def _dates(self, values: _Column, filled: np.ndarray, column: str, iso_column: str) -> None:
        iso = np.array([raw_to_iso(u) if f else "" for u, f in zip(values.distinct, filled)], dtype=object)
        bad = filled & (iso == "")
        if bad.any():
            self.add(self.active & values.rows(bad), "impossible_date", column,
                     lambda v: f"{v!r} is not a valid date (DD MON YYYY, UN/UNK for unknown parts)")
        # The typed text is what the site entered; the export's ISO column is the EDC's reading
        # of it. Where they disagree the typed text wins, and the disagreement is a finding.
        exported = self.df[iso_column].to_numpy(dtype=object)
        typed = values.rows(iso)
        differ = self.active & (typed != "") & (typed != exported)
        if differ.any():
            rows = np.flatnonzero(differ)
            raw = self.df[column].to_numpy()
            for i in rows:
                self.out.append(ReaderFinding(
                    self.file, self.form.oid, self.ids[i], self.subjects[i], column, raw[i],
                    "inconsistent_date",
                    f"typed date {raw[i]!r} is {typed[i]} but the export's {iso_column} says "
                    f"{exported[i] or 'nothing'!r}; {typed[i]} (the typed text) is used"))
            col = self.df.columns.get_loc(iso_column)
            self.df.iloc[rows, col] = typed[rows]

    def _numbers(self, fld, values: _Column, filled: np.ndarray) -> None:
        """One finding per value: not a number, else not whole (integer fields), else outside
        the edit-check range."""
        numbers = parse_numbers(values.distinct.where(filled, ""))
        finite = np.isfinite(numbers)
        check = self.active & values.rows(filled)
        self.add(check & values.rows(~finite), "out_of_range", fld.oid, _not_a_number)
        if fld.type == "integer":
            with np.errstate(invalid="ignore"):
                fraction = finite & (numbers % 1 != 0)
            self.add(check & values.rows(fraction), "out_of_range", fld.oid,
                     lambda v: f"{v!r} is not a whole number")
            finite = finite & ~fraction
        if fld.range:
            lo, hi = fld.range
            outside = finite & ((numbers < lo) | (numbers > hi))
            unit = f" {fld.unit}" if fld.unit else ""
            self.add(check & values.rows(outside), "out_of_range", fld.oid,
                     lambda v: f"{v}{unit} is outside the range {lo:g}-{hi:g}{unit}")

    def _length(self, values: _Column, limit: int, column: str) -> None:
        long = (values.distinct.str.len() > limit).to_numpy()
        if long.any():
            self.add(self.active & values.rows(long), "long_text", column,
                     lambda v: f"text is {len(v)} characters, longer than {limit}")

    def _ascii(self, values: _Column, column: str) -> None:
        distinct = values.distinct.to_numpy()
        if "".join(distinct).isascii():  # one C-level pass; per value only when something is there
            return
        other = ~np.fromiter(map(str.isascii, distinct), dtype=bool, count=len(distinct))
        self.add(self.active & values.rows(other), "non_ascii", column,
                 lambda v: "text holds non-ASCII characters "
                           f"({''.join(sorted({c for c in v if not c.isascii()}))})")

    def _duplicates(self) -> None:
        """Active records whose data equal an earlier active record of the same subject,
        folder and form (a double entry). The hash of the subject's, folder's and entered
        values' codes (`fold`) finds candidates (equal records have equal codes); the exact
        comparison of every data column runs on those only."""
        key = ["SUBJECT", "FOLDER"] + self.form.data_columns()
        if len(self.rows) < 2:
            return
        twins = self.rows[pd.Series(self.hashed).duplicated(keep=False).to_numpy()]
        candidates = self.df.iloc[twins][key + ["RECORDID"]]
        later = candidates.duplicated(subset=key, keep="first").to_numpy()
        if not later.any():
            return
        # frames are sorted by RECORDID, so "first" is the original entry
        first = candidates.groupby(key, sort=False)["RECORDID"].transform("first").to_numpy()
        rows = self.df.index.get_indexer(candidates.index[later])
        for i, original in sorted(zip(rows, first[later])):
            self.out.append(ReaderFinding(self.file, self.form.oid, self.ids[i], self.subjects[i],
                                          "", "", "duplicate_record",
                                          f"same data as active record {original} (same subject, "
                                          f"folder and form)"))


# A decimal written with a comma ('1,5'): a number to the site, not to the export
COMMA_DECIMAL = r"[-+]?[0-9]+,[0-9]+"
_COMMA_DECIMAL = re.compile(COMMA_DECIMAL)
# A number as an export writes it: ASCII digits, an optional sign, point and exponent. Not
# 'inf', 'nan', '1_000' or '١٢', which Python's float() would take.
_DECIMAL = r"\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*"


def parse_numbers(texts: pd.Series) -> np.ndarray:
    """float64 per text: its number, NaN for empty text and anything that is not a decimal
    number (then the edit check says 'not a number')."""
    texts = texts.fillna("").astype(str)
    ok = texts.str.fullmatch(_DECIMAL, flags=re.ASCII).fillna(False).astype(bool).to_numpy()
    out = np.full(len(texts), np.nan)
    if ok.any():
        with np.errstate(over="ignore"):
            out[ok] = texts[ok].astype(float).to_numpy()
    return out


def _not_a_number(value: str) -> str:
    if _COMMA_DECIMAL.fullmatch(value.strip()):
        return (f"{value!r} is not a number: a decimal comma (or a thousands separator)? the "
                f"export must use a point for decimals and no separators")
    return f"{value!r} is not a number"


def _orphans(frames: dict[str, pd.DataFrame], forms: FormsConfig,
             sources: dict[str, str]) -> list[ReaderFinding]:
    """Subjects with records but no active record in the enrolment form (a mistyped subject
    number, or data entered for someone never enrolled): one finding per subject, at its first
    record in forms order."""
    enrolment = frames[forms.enrolment_form]
    enrolled = set(enrolment.loc[enrolment["RECORDACTIVE"] != "0", "SUBJECT"])
    first: dict[str, tuple[str, str]] = {}
    counts: Counter = Counter()
    for form in forms.forms:
        df = frames[form.oid]
        outside = df[~df["SUBJECT"].isin(enrolled)]
        counts.update(outside["SUBJECT"].value_counts().to_dict())
        firsts = outside.drop_duplicates("SUBJECT")[["SUBJECT", "RECORDID"]]
        for subject, rid in firsts.itertuples(index=False):
            first.setdefault(subject, (form.oid, rid))
    enrol = f"{forms.enrolment_form} ({forms.form(forms.enrolment_form).name})"
    return [ReaderFinding(sources.get(oid, ""), oid, rid, subject, "SUBJECT", subject,
                          "orphan_subject",
                          f"subject has {counts[subject]} record(s) but no active {enrol} record")
            for subject, (oid, rid) in sorted(first.items())]
