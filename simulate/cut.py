"""An earlier transfer of a simulated study: the same histories, cut at an earlier date.

A study simulator always runs to the study's own data cut-off (its default transfer date), so
the requested date never reaches a random stream: every subject, event and value is the one
the default transfer has. `cut_transfer` then keeps what the EDC held on the earlier date,
the way the simulator's own dating rules would have written it:
- a subject who had not consented by then is absent (no IC record kept: nothing of theirs);
- a record is kept when its own date (visit or event date, as the simulator recorded it) is
  on or before the cut; a record with an earlier version (`Recorder.add_earlier`, e.g. an
  apheresis contraindication on file before the procedure) shows that version in between;
- what a later date closes is still open: an end date after the cut becomes ongoing (AE, CM,
  subsequent therapy; the AE outcome becomes not recovered / recovering, a fatal AE whose
  death is after the cut is neither fatal nor serious by death), an exposure end is the cut,
  an engraftment after the cut is not yet known;
- the entry date (LASTMODIFIED) is never after the cut: a record entered later was, at the
  cut, entered on the cut date (the same rule the default transfer applies to its own date).
What only the later transfer can know stays out: deaths, dispositions and visits after the
cut. Per-record choices the cut needs (an open AE's outcome) are drawn from a hash of the
record, so they do not depend on the date either.
"""
from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import replace
from typing import Any

from simulate.model import RecordHistory, SimulatedStudy

# Form -> (end date field, ongoing flag): an end after the cut is not known yet.
_ONGOING = {"CM": ("CMENDAT", "CMONGO"), "SUBTX": ("STXENDAT", "STXONGO"),
            "MH": ("MHENDAT", "MHONGO")}
# Form -> end dates that are the cut when later (an exposure still running at the cut).
_CLAMPED = {"AGX": ("AXENDAT",)}
# Form -> dates of something that has not happened yet at the cut.
_NOT_YET = {"ASCT": ("ANCENGDT", "PLTENGDT")}
_SERIOUS_CRITERIA = ("AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE")


def _after(value: Any, cut: str) -> bool:
    """Is a (possibly partial) ISO date after the cut? "2025-02" is not after 2025-02-27."""
    return isinstance(value, str) and value > cut and not cut.startswith(value)


def _unit(*parts: Any) -> float:
    """A uniform number in [0, 1) fixed by the parts (a record's identity)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf-8")) / 2 ** 32


def _cut_ae(rec: dict, cut: str, seed: int) -> None:
    if not _after(rec.get("AEENDAT"), cut):
        return
    grade = int(rec.get("AETOXGR") or rec.get("AEASTCT") or 0)
    u = _unit(seed, rec["SUBJECT"], rec.get("AEGRPID"), rec.get("AESTDAT"), rec.get("AETERM"))
    # The same outcome rule the simulator uses for a record open at its transfer date.
    rec.update(AEENDAT=None, AEONGO="Y", AEOUT="2" if grade <= 2 and u < 0.3 else "3")
    if rec.get("AESDTH") == "Y":
        rec["AESDTH"] = "N"
        if not any(rec.get(c) == "Y" for c in _SERIOUS_CRITERIA):
            rec.update(AESER="N", **dict.fromkeys(_SERIOUS_CRITERIA))


def _cut_record(form: str, rec: dict, cut: str, seed: int) -> None:
    if form == "AE":
        _cut_ae(rec, cut, seed)
    if form in _ONGOING:
        end, ongo = _ONGOING[form]
        if _after(rec.get(end), cut):
            rec[end], rec[ongo] = None, "Y"
    for f in _CLAMPED.get(form, ()):
        if _after(rec.get(f), cut):
            rec[f] = cut
    for f in _NOT_YET.get(form, ()):
        if _after(rec.get(f), cut):
            rec[f] = None
    if rec.get("_ENTRY") and rec["_ENTRY"] > cut:
        rec["_ENTRY"] = cut


def cut_transfer(sim: SimulatedStudy, cut: dt.date, date_fields: dict[str, tuple[str, ...]],
                 form_fields: dict[str, tuple[str, ...]]) -> SimulatedStudy:
    """`sim` as the EDC held it on `cut` (on or before `sim.transfer_date`); `date_fields` and
    `form_fields`: per form OID, its date fields and all its fields (forms.yaml)."""
    if sim.history is None:
        raise ValueError(f"{sim.study}: the simulation carries no record dates to cut by")
    check_cut(sim.transfer_date, cut)
    records, history, consented = cut_records(sim.records, sim.history, cut, sim.seed,
                                              date_fields, form_fields)
    return replace(sim, transfer_date=cut, records=records,
                   truth=cut_truth(sim.truth, consented, cut, sim.transfer_date), history=history)


def check_cut(transfer_date: dt.date, cut: dt.date) -> None:
    if cut > transfer_date:
        raise ValueError(f"cut {cut} is after the transfer date {transfer_date}")


def cut_records(records: dict[str, list[dict]], history: RecordHistory, cut: dt.date, seed: int,
                date_fields: dict[str, tuple[str, ...]], form_fields: dict[str, tuple[str, ...]],
                ) -> tuple[dict[str, list[dict]], RecordHistory, set[str]]:
    """The records of whole subjects (a study, or a group of its subjects) as held on `cut`:
    (records, their history without earlier versions, the subjects consented by then)."""
    text = cut.isoformat()
    consented = {r["SUBJECT"] for r, d in zip(records.get("IC", ()), history.dates.get("IC", ()))
                 if d <= cut}
    kept_records: dict[str, list[dict]] = {}
    dates: dict[str, list[dt.date]] = {}
    for form, recs in records.items():
        kept, kept_dates = [], []
        for i, (r, d) in enumerate(zip(recs, history.dates[form])):
            if r["SUBJECT"] not in consented:
                continue
            if d > cut:
                earlier = history.earlier.get((form, i))
                if earlier is None or earlier[0] > cut:
                    continue
                d = earlier[0]
                r = {**r, **dict.fromkeys(form_fields[form]), **earlier[1]}
            else:
                r = dict(r)
            _cut_record(form, r, text, seed)
            late = [f for f in date_fields.get(form, ()) if _after(r.get(f), text)]
            if late:
                raise AssertionError(f"{r['SUBJECT']} {form}: {late} after the cut {text} "
                                     f"in a record dated {d}: simulate/cut.py has no rule for it")
            kept.append(r)
            kept_dates.append(d)
        kept_records[form], dates[form] = kept, kept_dates
    return kept_records, RecordHistory(dates, {}), consented


def cut_truth(truth: dict[str, Any], consented: set[str], cut: dt.date,
              transfer_date: dt.date) -> dict[str, Any]:
    """The simulation's truth for the transfer cut at `cut` (`consented`: its subjects)."""
    truth = dict(truth)
    if "subjects" in truth:
        truth["subjects"] = [t for t in truth["subjects"] if t["SUBJECT"] in consented]
    truth.update(transfer_date=cut.isoformat(), cut_from=transfer_date.isoformat())
    return truth
