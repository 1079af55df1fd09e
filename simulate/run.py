"""Simulate a study and deliver it as an EDC transfer folder (CSV or ODM), faults optional."""
from __future__ import annotations

import datetime as dt
import importlib
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinpipe.config import StudyConfig, load_study
from clinpipe.errors import ClinpipeError
from edc.export import ChunkedFrames
from edc.forms import FormsConfig, load_forms
from simulate import faults as fault_mod
from simulate.cut import cut_records, cut_transfer, cut_truth
from simulate.model import CHUNK_SUBJECTS, SimulatedStudy, StudyStream

SIMULATORS = {"RS001": "simulate.rs001", "GLOCART": "simulate.glocart"}
FORMATS = ("csv", "odm")


def simulate_study(study: str, n_subjects: int, seed: int, root: Path | None = None,
                   transfer_date: dt.date | None = None) -> Simulation:
    """Simulate `study`; with `transfer_date`, the transfer the EDC would have delivered on that
    earlier date: the same subjects and histories as the default transfer (same seed), cut
    there (simulate/cut.py). A date after the study's own cut-off is refused: the simulated
    histories end there.

    The trial is planned here; its subjects run when something needs them (`Simulation`):
    `deliver` streams them into the export, `.records` holds them all."""
    if study not in SIMULATORS:
        raise ClinpipeError(f"no simulator for study {study!r}", hint=f"use one of {sorted(SIMULATORS)}")
    if n_subjects < 1:
        raise ClinpipeError("--subjects must be at least 1")
    module = importlib.import_module(SIMULATORS[study])
    forms = load_forms(study, root)
    study_cfg = load_study(study, root)

    def plan() -> StudyStream:
        return module.stream(study_cfg, forms, n_subjects, seed)

    planned = plan()
    if transfer_date is None or transfer_date == planned.transfer_date:
        return Simulation(plan, planned, forms, study_cfg, n_subjects)
    if transfer_date > planned.transfer_date:
        raise ClinpipeError(
            f"--transfer-date {transfer_date} is after {study}'s simulated data cut-off "
            f"{planned.transfer_date} (seed {seed}, {n_subjects} subjects)",
            hint=f"give a date on or before {planned.transfer_date}: the simulated histories end there")
    first = planned.first_consent
    if first is None or transfer_date < first:
        raise ClinpipeError(
            f"--transfer-date {transfer_date} is before {study}'s first consent ({first}): "
            f"the transfer would hold no subject", hint=f"give a date from {first} on")
    return Simulation(plan, planned, forms, study_cfg, n_subjects, cut=transfer_date)


class Simulation:
    """A simulated study (what `SimulatedStudy` offers) whose subjects run when needed.

    `export(study_cfg)` runs them a group at a time straight into the export frames
    (`edc.export.ChunkedFrames`, spilled to a temporary folder beyond one group), so a large
    study never holds all its records; `.records`, `.history` (and `.truth` before an export)
    run them into one `SimulatedStudy` in memory. Either way the same seed gives the same
    records: each run replays the planned trial from the start.
    """

    def __init__(self, plan: Callable[[], StudyStream], planned: StudyStream, forms: FormsConfig,
                 study_cfg: StudyConfig, n_subjects: int, cut: dt.date | None = None):
        self._plan, self._planned = plan, planned
        self._forms, self._study_cfg, self._n = forms, study_cfg, n_subjects
        self.cut = cut
        self.study, self.seed = planned.study, planned.seed
        self.transfer_date = cut or planned.transfer_date
        self._sim: SimulatedStudy | None = None
        self._export: ChunkedFrames | None = None
        self._truth: dict[str, Any] | None = None

    def _stream(self) -> StudyStream:
        planned, self._planned = self._planned, None
        return planned or self._plan()

    def _cut_args(self) -> tuple[dict, dict]:
        forms = self._forms.forms
        return ({f.oid: tuple(fd.oid for fd in f.fields if fd.type == "date") for f in forms},
                {f.oid: tuple(fd.oid for fd in f.fields) for f in forms})

    def simulated(self) -> SimulatedStudy:
        """All records in memory, as the simulator (and the cut) give them."""
        if self._sim is None:
            stream = self._stream()
            sim = stream.collect()
            if self.cut is not None:
                sim = cut_transfer(sim, self.cut, *self._cut_args())
            self._sim = sim
        return self._sim

    @property
    def records(self) -> Mapping[str, list[dict[str, Any]]]:
        return _Records(self)

    @property
    def history(self):
        return self.simulated().history

    @property
    def truth(self) -> dict[str, Any]:
        if self._sim is None and self._truth is not None:
            return self._truth
        return self.simulated().truth

    def n_records(self) -> int:
        if self._sim is not None:
            return self._sim.n_records()
        return self.export().n_records

    def export(self, study_cfg: StudyConfig | None = None) -> ChunkedFrames:
        """The export frames, built a group of subjects at a time (once)."""
        if self._export is not None:
            return self._export
        study_cfg = study_cfg or self._study_cfg
        if self._sim is not None:
            chunked = ChunkedFrames(self._forms, study_cfg, self.transfer_date, self.seed)
            chunked.add(self._sim.records)
            self._export = chunked
            return chunked
        spill = None
        if self._n > CHUNK_SUBJECTS:
            spill = Path(tempfile.mkdtemp(prefix=f"clinpipe-simulate-{self.study}-"))
            weakref.finalize(self, shutil.rmtree, spill, ignore_errors=True)
        chunked = ChunkedFrames(self._forms, study_cfg, self.transfer_date, self.seed, spill=spill)
        stream = self._stream()
        consented: set[str] = set()
        for records, history in stream.chunks(CHUNK_SUBJECTS):
            if self.cut is not None:
                records, _, kept = cut_records(records, history, self.cut, self.seed,
                                               *self._cut_args())
                consented |= kept
            chunked.add(records)
            del records, history
        truth = stream.truth or {}
        if self.cut is not None:
            truth = cut_truth(truth, consented, self.cut, stream.transfer_date)
        self._truth, self._export = truth, chunked
        return chunked


class _Records(Mapping):
    """`Simulation.records`: how many forms without running the subjects (the CLI's summary);
    anything else runs them."""

    def __init__(self, sim: Simulation):
        self._sim = sim

    def __len__(self) -> int:
        # A simulator's records carry every form of forms.yaml, with records or not.
        return len(self._sim._forms.forms)

    def __getitem__(self, form: str) -> list[dict[str, Any]]:
        return self._sim.simulated().records[form]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sim.simulated().records)


def ensure_new_folder(outdir: Path) -> None:
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())):
        raise ClinpipeError("output folder is not empty", file=outdir,
                            hint="choose a new folder: a transfer folder holds one delivery")


@dataclass
class Delivered:
    outdir: Path
    files: list[Path]
    faults: list[fault_mod.Fault] = field(default_factory=list)


def deliver(sim: SimulatedStudy | Simulation, fmt: str, outdir: Path,
            fault_kinds: list[str] | None = None, root: Path | None = None,
            progress=lambda msg: None) -> Delivered:
    """Write `sim` as one transfer folder in `fmt`, with a transfer manifest and, when faults
    were asked for, `faults.json` listing every fault injected. A CSV transfer without faults
    is written a window of rows at a time (`edc.transfer.write_chunked_transfer`)."""
    from edc.csv_format import csv_name
    from edc.odm_format import odm_name
    from edc.transfer import rehash_manifest, write_chunked_transfer, write_transfer

    if fmt not in FORMATS:
        raise ClinpipeError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    study_cfg, forms = load_study(sim.study, root), load_forms(sim.study, root)
    fault_kinds = fault_kinds or []
    outdir = Path(outdir)
    ensure_new_folder(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(sim, Simulation):
            chunked = sim.export(study_cfg)
        else:
            chunked = ChunkedFrames(forms, study_cfg, sim.transfer_date, sim.seed)
            chunked.add(sim.records)
        progress(f"building export frames ({chunked.n_records:,} records)")
        if fmt == "csv" and not fault_kinds:
            progress(f"writing CSV to {outdir}")
            files = write_chunked_transfer(chunked, forms, study_cfg, outdir, format=fmt,
                                           transfer_date=sim.transfer_date)
            return Delivered(outdir, files, [])
        frames = chunked.frames()
        file_for = csv_name if fmt == "csv" else (lambda form: odm_name(sim.study))
        frames, faults = fault_mod.inject_records(frames, forms, fault_kinds, sim.seed, file_for)
        progress(f"writing {fmt.upper()} to {outdir}")
        files = write_transfer(frames, forms, study_cfg, outdir, format=fmt,
                               transfer_date=sim.transfer_date)
        del frames
        if "wrong_encoding" in fault_kinds:
            # The EDC itself wrote cp1252, so its manifest hashes the cp1252 bytes.
            fault_mod.misencode_file(outdir, faults)
            rehash_manifest(outdir)
        if "truncated_file" in fault_kinds:
            # Truncation happens in transit, after the manifest: the hash check must catch it.
            faults.append(fault_mod.truncate_file(outdir, faults, sim.seed))
        if fault_kinds:
            fault_mod.write_manifest(outdir, faults, sim.seed)
    except BaseException:
        shutil.rmtree(outdir, ignore_errors=True)
        raise
    return Delivered(outdir, files, faults)
