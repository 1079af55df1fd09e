"""Fault injection: the defects real EDC transfers carry, put in on purpose, each one listed.

Record-level faults change the export frames (after `edc.export.build_frames`); file-level
faults (`truncated_file`, `wrong_encoding`) damage a written file. Every fault injected is
one row of the manifest (file, record, subject, field, kind, detail) so tests and later
layers know the truth they must find.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from edc.csv_format import csv_name
from edc.forms import FormDef, FormsConfig

RECORD_FAULTS = (
    "duplicate_record", "inactivated_record", "impossible_date", "unknown_code",
    "missing_required", "out_of_range", "orphan_subject", "non_ascii", "long_text",
)
FILE_FAULTS = ("truncated_file", "wrong_encoding")
FAULT_KINDS = RECORD_FAULTS + FILE_FAULTS
MANIFEST_NAME = "faults.json"

# Text a site might paste from a word processor; cp1252 can encode it, ASCII cannot.
_NON_ASCII = "Fièvre à 39°C, patient très fatigué"
_LONG_TEXT = ("Patient reported intermittent symptoms over several days; "
              "investigator notes describe the course in detail, including supportive care, "
              "dose timing, laboratory follow-up, the consults obtained and the plan agreed "
              "with the sponsor medical monitor before discharge home.")


@dataclass(frozen=True)
class Fault:
    kind: str
    file: str
    form: str
    record: str      # RECORDID ('' for a whole-file fault)
    subject: str
    field: str
    detail: str


def parse_kinds(text: str | None) -> list[str]:
    if not text:
        return []
    kinds = []
    for part in (p.strip() for p in text.split(",")):
        if part == "all":
            kinds.extend(FAULT_KINDS)
        elif part in FAULT_KINDS:
            kinds.append(part)
        elif part:
            raise ValueError(f"unknown fault kind {part!r}; choose from {', '.join(FAULT_KINDS)} or all")
    return list(dict.fromkeys(kinds))


class _Injector:
    def __init__(self, frames: dict[str, pd.DataFrame], forms: FormsConfig, rng: np.random.Generator,
                 file_for):
        self.frames = {k: v.copy() for k, v in frames.items()}
        self.forms = forms
        self.rng = rng
        self.file_for = file_for
        self.faults: list[Fault] = []
        self.touched: set[str] = set()  # RECORDIDs a fault changed, copied or added: one fault each
        self.next_id = 1 + max((int(f["RECORDID"].astype(int).max()) for f in frames.values() if len(f)),
                               default=0)

    # -- choosing targets ---------------------------------------------------------------------
    def _free_rows(self, form: str, field: str) -> np.ndarray:
        """Active, not yet touched rows of `form` where `field` has a value."""
        frame = self.frames[form]
        mask = ((frame["RECORDACTIVE"] == "1") & ~frame["RECORDID"].isin(self.touched)
                & (frame[field] != ""))
        return np.flatnonzero(mask.to_numpy())

    def _choose(self, want, kind: str, skip_forms=()) -> tuple[FormDef, str, int]:
        """A random (form, field, row) where `want(field)` holds, in forms order for determinism."""
        cands = [(form, f.oid) for form in self.forms.forms if form.oid not in skip_forms
                 and form.oid in self.frames for f in form.fields
                 if want(f) and len(self._free_rows(form.oid, f.columns()[0]))]
        if not cands:
            raise ValueError(f"no record left with a field suitable for fault {kind!r}")
        form, field = cands[int(self.rng.integers(len(cands)))]
        rows = self._free_rows(form.oid, form.field_by_oid[field].columns()[0])
        row = int(self.rng.choice(rows))
        self.touched.add(self.frames[form.oid].at[row, "RECORDID"])
        return form, field, row

    def _note(self, kind, form, row, field, detail):
        frame = self.frames[form]
        self.faults.append(Fault(kind, self.file_for(form), form, str(frame.at[row, "RECORDID"]),
                                 str(frame.at[row, "SUBJECT"]), field, detail))

    def _append(self, form: str, row: pd.Series) -> int:
        frame = self.frames[form]
        row = row.copy()
        row["RECORDID"] = str(self.next_id)
        self.next_id += 1
        same = ((frame["SUBJECT"] == row["SUBJECT"]) & (frame["FOLDER"] == row["FOLDER"])
                & (frame["FOLDERSEQ"] == row["FOLDERSEQ"]))
        row["RECORDPOSITION"] = str(max(frame.loc[same, "RECORDPOSITION"].astype(int), default=0) + 1)
        self.frames[form] = pd.concat([frame, row.to_frame().T], ignore_index=True)
        self.touched.add(row["RECORDID"])
        return len(self.frames[form]) - 1

    # -- the faults ---------------------------------------------------------------------------
    def duplicate_record(self):
        form, _, row = self._choose(lambda f: f.required, "duplicate_record")
        src = self.frames[form.oid].loc[row]
        new = self._append(form.oid, src)
        self._note("duplicate_record", form.oid, new, "", f"copy of RECORDID {src['RECORDID']}")

    def inactivated_record(self):
        form, _, row = self._choose(lambda f: f.required, "inactivated_record")
        src = self.frames[form.oid].loc[row].copy()
        src["RECORDACTIVE"] = "0"
        new = self._append(form.oid, src)
        self._note("inactivated_record", form.oid, new, "RECORDACTIVE",
                   f"entered in error, inactivated (copy of RECORDID {src['RECORDID']})")

    def impossible_date(self):
        form, field, row = self._choose(lambda f: f.type == "date", "impossible_date")
        frame = self.frames[form.oid]
        raw = frame.at[row, f"{field}_RAW"]
        year = raw[-4:] if raw[-4:].isdigit() else "2025"
        frame.at[row, f"{field}_RAW"] = f"30 FEB {year}"
        frame.at[row, field] = ""
        self._note("impossible_date", form.oid, row, f"{field}_RAW", f"30 FEB {year} (was {raw})")

    def unknown_code(self):
        form, field, row = self._choose(lambda f: bool(f.codelist), "unknown_code")
        frame = self.frames[form.oid]
        old = frame.at[row, field]
        frame.at[row, field] = "X9"
        frame.at[row, f"{field}_DEC"] = ""
        self._note("unknown_code", form.oid, row, field, f"X9 (was {old})")

    def missing_required(self):
        form, field, row = self._choose(lambda f: f.required and f.type != "date", "missing_required")
        frame = self.frames[form.oid]
        old = frame.at[row, field]
        frame.at[row, field] = ""
        if form.field_by_oid[field].codelist:
            frame.at[row, f"{field}_DEC"] = ""
        self._note("missing_required", form.oid, row, field, f"blanked (was {old})")

    def out_of_range(self):
        form, field, row = self._choose(lambda f: f.range is not None, "out_of_range")
        hi = form.field_by_oid[field].range[1]
        value = str(int(hi * 10)) if form.field_by_oid[field].type == "integer" else str(float(hi * 10))
        frame = self.frames[form.oid]
        old = frame.at[row, field]
        frame.at[row, field] = value
        self._note("out_of_range", form.oid, row, field, f"{value} (was {old})")

    def orphan_subject(self):
        # An orphan has records in other forms only, never in the enrolment form.
        form, _, row = self._choose(lambda f: f.required, "orphan_subject",
                                    skip_forms=(self.forms.enrolment_form,))
        src = self.frames[form.oid].loc[row].copy()
        known = set().union(*(set(f["SUBJECT"]) for f in self.frames.values()))
        n = 999
        while f"{src['SITEID']}-{n}" in known:
            n = n * 10 + 9
        src["SUBJECT"] = f"{src['SITEID']}-{n}"
        new = self._append(form.oid, src)
        self._note("orphan_subject", form.oid, new, "SUBJECT", "subject never enrolled")

    def _text_field(self, kind):
        return self._choose(lambda f: f.type == "text" and not f.codelist and f.length >= 200, kind)

    def non_ascii(self):
        form, field, row = self._text_field("non_ascii")
        self.frames[form.oid].at[row, field] = _NON_ASCII
        self._note("non_ascii", form.oid, row, field, _NON_ASCII)

    def wrong_encoding(self):
        """Record part of the encoding fault: text a cp1252 re-encoding will garble."""
        form, field, row = self._text_field("wrong_encoding")
        self.frames[form.oid].at[row, field] = _NON_ASCII
        self._note("wrong_encoding", form.oid, row, field, "file delivered as cp1252, not UTF-8")

    def long_text(self):
        form, field, row = self._text_field("long_text")
        self.frames[form.oid].at[row, field] = _LONG_TEXT
        self._note("long_text", form.oid, row, field, f"{len(_LONG_TEXT)} characters")


def inject_records(frames: dict[str, pd.DataFrame], forms: FormsConfig, kinds: list[str],
                   seed: int, file_for=csv_name) -> tuple[dict[str, pd.DataFrame], list[Fault]]:
    """Apply the record-level faults in `kinds`; return new frames and the faults injected."""
    inj = _Injector(frames, forms, np.random.default_rng([seed, 0xFA017]), file_for)
    for kind in kinds:
        if kind in RECORD_FAULTS or kind == "wrong_encoding":
            getattr(inj, kind)()
    for oid, frame in inj.frames.items():
        inj.frames[oid] = frame.sort_values("RECORDID", key=lambda s: s.astype(int),
                                            kind="stable").reset_index(drop=True)
    return inj.frames, inj.faults


def misencode_file(outdir: Path, faults: list[Fault]) -> None:
    """`wrong_encoding`: the EDC wrote the file holding the record that `inject_records` gave
    non-ASCII text as cp1252 (so the bytes really differ from UTF-8)."""
    target = next(f for f in faults if f.kind == "wrong_encoding")
    path = outdir / target.file
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))


def truncate_file(outdir: Path, faults: list[Fault], seed: int) -> Fault:
    """`truncated_file`: the largest file not already damaged is cut inside a record, as a
    transfer interrupted in transit leaves it."""
    rng = np.random.default_rng([seed, 0xF11E])
    damaged = {f.file for f in faults if f.kind == "wrong_encoding"}
    files = sorted((p for p in outdir.iterdir() if p.suffix in (".csv", ".xml")),
                   key=lambda p: (p.name in damaged, -p.stat().st_size, p.name))
    path = files[0]
    data = path.read_bytes()
    cut = int(len(data) * float(rng.uniform(0.55, 0.9)))
    while cut < len(data) and data[cut - 1:cut] in (b"\n", b'"', b","):
        cut += 1
    path.write_bytes(data[:cut])
    return Fault("truncated_file", path.name, "", "", "", "", f"cut at byte {cut} of {len(data)}")


def write_manifest(outdir: Path, faults: list[Fault], seed: int) -> Path:
    path = outdir / MANIFEST_NAME
    payload = {"seed": seed, "faults": [asdict(f) for f in faults]}
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path


def read_manifest(outdir: Path) -> list[Fault]:
    data = json.loads((outdir / MANIFEST_NAME).read_text(encoding="utf-8"))
    return [Fault(**f) for f in data["faults"]]
