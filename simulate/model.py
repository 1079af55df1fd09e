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
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

SYSTEM_KEYS = ("SITEID", "SUBJECT", "FOLDER", "FOLDERSEQ", "_ENTRY")


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
