"""What a study simulator hands to the exporter.

A simulator (`simulate/rs001.py`, `simulate/glocart.py`) produces clinical content only:
records per EDC form, in the form's field OIDs, with
- system keys   `SITEID`, `SUBJECT`, `FOLDER` (folder OID from study.yaml visits or
                `edc_folders`), optional `FOLDERSEQ` (int, default 1; repeats of a folder such
                as unscheduled visits), and `_ENTRY` (ISO date the site entered it; drives
                LASTMODIFIED, late entry shows as a large gap),
- dates         as ISO 8601 strings, partial allowed ("2025-03", "2025"),
- coded fields  as the EDC code (`"F"`, `"3"`), never the decode,
- numbers       as int/float, text as str, missing as None.
The exporter (`edc/export.py`) adds everything the EDC system adds: STUDYID, FOLDERNAME, FORM,
RECORDPOSITION, RECORDID, RECORDACTIVE, LASTMODIFIED, `_RAW` date text and `_DEC` decodes.

`truth` carries what the simulation decided (escalation trajectory, per-subject facts) so
tests can check the data against it; it is never exported.

A simulator runs subject after subject. `StudyStream` hands the records over a group of whole
subjects at a time, so a large study is exported without holding every record at once
(`edc.export.ChunkedFrames`); `StudyStream.collect()` is the whole `SimulatedStudy`, the same
records in the same order whatever the group size (the subject loop order is the contract:
each subject's random streams, and the shared entry-lag stream, are drawn in that order).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

SYSTEM_KEYS = ("SITEID", "SUBJECT", "FOLDER", "FOLDERSEQ", "_ENTRY")


@dataclass
class RecordHistory:
    """Per form, the own date of each record (index-aligned with the records) and the earlier
    versions `Recorder.add_earlier` registered, by (form, index)."""
    dates: dict[str, list[dt.date]]
    earlier: dict[tuple[str, int], tuple[dt.date, dict[str, Any]]] = field(default_factory=dict)


Chunk = tuple[dict[str, list[dict[str, Any]]], RecordHistory]
# Simulates subjects, yielding the records of every `n` finished ones; returns the truth.
SubjectLoop = Callable[[int], Generator[Chunk, None, dict[str, Any]]]

CHUNK_SUBJECTS = 500


@dataclass
class SimulatedStudy:
    study: str
    seed: int
    transfer_date: dt.date
    records: dict[str, list[dict[str, Any]]]
    truth: dict[str, Any] = field(default_factory=dict)
    # Each record's own date and earlier versions (simulate.common.RecordHistory), so the
    # transfer can be cut at an earlier date (simulate/cut.py); never exported.
    history: Any = None

    def n_records(self) -> int:
        return sum(len(v) for v in self.records.values())


class StudyStream:
    """A study simulation whose subjects are yet to run: what is decided before the subject loop
    (`transfer_date`, `first_consent`: the earliest consent the records will hold, or None),
    then `chunks()` once, or `collect()`. `truth` is there once the loop has run."""

    def __init__(self, study: str, seed: int, transfer_date: dt.date,
                 first_consent: dt.date | None, subjects: SubjectLoop):
        self.study, self.seed, self.transfer_date = study, seed, transfer_date
        self.first_consent = first_consent
        self.truth: dict[str, Any] | None = None
        self._subjects: SubjectLoop | None = subjects

    def chunks(self, subjects_per_chunk: int = CHUNK_SUBJECTS) -> Iterator[Chunk]:
        """(records, history) of each group of `subjects_per_chunk` subjects, in subject order;
        history indices count within the group. One pass: the random streams are consumed."""
        if self._subjects is None:
            raise RuntimeError(f"{self.study}: the simulation has already run")
        loop, self._subjects = self._subjects, None
        self.truth = yield from loop(max(int(subjects_per_chunk), 1))

    def collect(self, subjects_per_chunk: int = CHUNK_SUBJECTS) -> SimulatedStudy:
        """Every record in one `SimulatedStudy`, as one subject loop writes them (the group
        size changes nothing)."""
        records: dict[str, list[dict[str, Any]]] = {}
        history = RecordHistory({})
        for recs, hist in self.chunks(subjects_per_chunk):
            offsets = {form: len(records.setdefault(form, [])) for form in recs}
            for form, rows in recs.items():
                records[form].extend(rows)
                history.dates.setdefault(form, []).extend(hist.dates.get(form, ()))
            for (form, i), version in hist.earlier.items():
                history.earlier[(form, offsets[form] + i)] = version
        return SimulatedStudy(self.study, self.seed, self.transfer_date, records,
                              self.truth or {}, history=history)
