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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clinpipe.errors import ExportError
from edc.csv_format import peek_studyid as peek_csv
from edc.csv_format import read_csv_form
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
                 "long_text")
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
    hashes = {_rel(p, transfer_dir): file_sha256(p) for p in files}
    if manifest is not None:  # before parsing: a damaged file is named as such, not mis-parsed
        check_hashes(manifest, hashes, complete=path.is_dir())
    study = study or (manifest.study if manifest else None) or _peek_study(files, fmt, encoding)
    if not study:
        raise ExportError("cannot tell which study the transfer belongs to (no transfer.json, "
                          "no data rows)", file=transfer_dir,
                          hint="pass the study explicitly (read_transfer(..., study=...))")
    forms = forms or load_forms(study)

    if fmt == "odm":
        raw, metadata, sources = _read_odm(files[0], transfer_dir, forms, encoding, manifest)
    else:
        raw, metadata, sources = _read_per_form(files, transfer_dir, fmt, forms, encoding, manifest)
    for oid, df in raw.items():
        _check_system(df, forms.form(oid), transfer_dir / sources[oid], study)
    _check_unique_ids(raw, sources, transfer_dir)
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
                   encoding: str, manifest: Manifest | None):
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
            df, metadata[oid] = read_csv_form(p, form, encoding), base
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


def _integers(values: pd.Series, minimum: int) -> np.ndarray:
    """Mask of values that are not whole numbers >= minimum."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(numbers) & (numbers % 1 == 0) & (numbers >= minimum))


def _check_system(df: pd.DataFrame, form: FormDef, path: Path, study: str) -> None:
    """The system columns carry the record keys everything downstream relies on."""
    if df.empty:
        return
    checks = [
        ("STUDYID", df["STUDYID"].to_numpy() != study, f"is another study (expected {study})",
         "read the transfer with the right study, or ask the data manager"),
        ("FORM", df["FORM"].to_numpy() != form.oid, f"names another form (expected {form.oid})",
         f"one form per file: {_CORRECTED}"),
        ("SUBJECT", df["SUBJECT"].to_numpy() == "", "is empty", "every record needs its subject"),
        ("SITEID", df["SITEID"].to_numpy() == "", "is empty", "every record needs its site"),
        ("FOLDER", df["FOLDER"].to_numpy() == "", "is empty", "every record needs its folder"),
        ("RECORDID", _integers(df["RECORDID"], 0), "is not an integer record id",
         f"RECORDID identifies the record for traceability: {_CORRECTED}"),
        ("FOLDERSEQ", _integers(df["FOLDERSEQ"], 1), "is not a positive integer", _CORRECTED),
        ("RECORDPOSITION", _integers(df["RECORDPOSITION"], 1), "is not a positive integer",
         _CORRECTED),
        ("RECORDACTIVE", ~df["RECORDACTIVE"].isin(("0", "1")).to_numpy(), "is not 0 or 1",
         "RECORDACTIVE is 1 for active, 0 for inactivated records"),
    ]
    for column, bad, what, hint in checks:
        if bad.any():
            i = int(np.argmax(bad))
            rid = df["RECORDID"].iloc[i]
            value, count = df[column].iloc[i], int(bad.sum())
            raise ExportError(f"{column} {value!r} {what} ({count} record(s))", file=path, record=f"RECORDID {rid}" if rid else f"row {i + 1}",
                              field=column, hint=hint)


def _check_unique_ids(raw: dict[str, pd.DataFrame], sources: dict[str, str],
                      transfer_dir: Path) -> None:
    parts = [pd.DataFrame({"id": pd.to_numeric(df["RECORDID"]).to_numpy(), "form": oid})
             for oid, df in raw.items() if not df.empty]
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


class _FormCheck:
    """Vectorised checks of one form: masks over the frame, findings only for flagged cells.
    Data checks look at active records only."""

    def __init__(self, df: pd.DataFrame, form: FormDef, forms: FormsConfig, file: str):
        self.df, self.form, self.forms, self.file = df, form, forms, file
        self.active = (df["RECORDACTIVE"] != "0").to_numpy()
        self.ids = df["RECORDID"].to_numpy()
        self.subjects = df["SUBJECT"].to_numpy()
        self.out: list[ReaderFinding] = []

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
        for fld in self.form.fields:
            entered = f"{fld.oid}_RAW" if fld.type == "date" else fld.oid  # what the site typed
            values = self.df[entered]
            filled = (values != "").to_numpy()
            if fld.required:
                self.add(self.active & ~filled, "missing_required", entered,
                         "required field is empty")
            if fld.codelist:
                self._codes(fld.codelist, values, filled, entered)
            if fld.type == "date":
                self._dates(values, filled, entered)
            if fld.type in ("integer", "float"):
                self._numbers(fld, values, filled)
            if fld.type == "text" and not fld.codelist:
                self._length(values, min(fld.length, _TEXT_LIMIT), entered)
            self._ascii(values, entered)
        self._duplicates()
        return self.out

    def _codes(self, name: str, values: pd.Series, filled: np.ndarray, column: str) -> None:
        codelist = self.forms.codelists[name]
        known = values.isin(list(codelist)).to_numpy()
        shown = ", ".join(list(codelist)[:12]) + (", ..." if len(codelist) > 12 else "")
        self.add(self.active & filled & ~known, "unknown_code", column,
                 lambda v: f"code {v!r} is not in codelist {name} ({shown})")

    def _dates(self, values: pd.Series, filled: np.ndarray, column: str) -> None:
        bad = [u for u in pd.unique(values[filled]) if raw_to_iso(u) == ""]
        if bad:
            self.add(self.active & values.isin(bad).to_numpy(), "impossible_date", column,
                     lambda v: f"{v!r} is not a valid date (DD MON YYYY, UN/UNK for unknown parts)")

    def _numbers(self, fld, values: pd.Series, filled: np.ndarray) -> None:
        """One finding per value: not a number, else not whole (integer fields), else outside
        the edit-check range."""
        numbers = pd.to_numeric(values.where(filled), errors="coerce").to_numpy(dtype=float)
        finite = np.isfinite(numbers)
        check = self.active & filled
        self.add(check & ~finite, "out_of_range", fld.oid, lambda v: f"{v!r} is not a number")
        if fld.type == "integer":
            with np.errstate(invalid="ignore"):
                fraction = finite & (numbers % 1 != 0)
            self.add(check & fraction, "out_of_range", fld.oid,
                     lambda v: f"{v!r} is not a whole number")
            finite = finite & ~fraction
        if fld.range:
            lo, hi = fld.range
            outside = finite & ((numbers < lo) | (numbers > hi))
            unit = f" {fld.unit}" if fld.unit else ""
            self.add(check & outside, "out_of_range", fld.oid,
                     lambda v: f"{v}{unit} is outside the range {lo:g}-{hi:g}{unit}")

    def _length(self, values: pd.Series, limit: int, column: str) -> None:
        array = values.to_numpy()
        if max(map(len, array)) <= limit:  # the common case costs one pass
            return
        self.add(self.active & (values.str.len().to_numpy() > limit), "long_text", column,
                 lambda v: f"text is {len(v)} characters, longer than {limit}")

    def _ascii(self, values: pd.Series, column: str) -> None:
        array = values.to_numpy()
        if "".join(array).isascii():  # one C-level pass; per cell only when something is there
            return
        mask = ~np.fromiter(map(str.isascii, array), dtype=bool, count=len(array))
        self.add(self.active & mask, "non_ascii", column,
                 lambda v: "text holds non-ASCII characters "
                           f"({''.join(sorted({c for c in v if not c.isascii()}))})")

    def _duplicates(self) -> None:
        """Active records whose data equal an earlier active record of the same subject,
        folder and form (a double entry). A 64-bit row hash finds candidates; the exact
        comparison runs on those only."""
        key = ["SUBJECT", "FOLDER"] + self.form.data_columns()
        act = self.df.loc[self.active, key + ["RECORDID"]]
        if len(act) < 2:
            return
        hashed = pd.util.hash_pandas_object(act[key], index=False)
        candidates = act[hashed.duplicated(keep=False).to_numpy()]
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
