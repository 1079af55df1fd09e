"""Simulate a study and deliver it as an EDC transfer folder (CSV or ODM), faults optional."""
from __future__ import annotations

import datetime as dt
import importlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from clinpipe.config import load_study
from clinpipe.errors import ClinpipeError
from edc.forms import load_forms
from simulate import faults as fault_mod
from simulate.cut import cut_transfer
from simulate.model import SimulatedStudy

SIMULATORS = {"RS001": "simulate.rs001", "GLOCART": "simulate.glocart"}
FORMATS = ("csv", "odm")


def simulate_study(study: str, n_subjects: int, seed: int, root: Path | None = None,
                   transfer_date: dt.date | None = None) -> SimulatedStudy:
    """Simulate `study`; with `transfer_date`, the transfer the EDC would have delivered on that
    earlier date: the same subjects and histories as the default transfer (same seed), cut
    there (simulate/cut.py). A date after the study's own cut-off is refused: the simulated
    histories end there."""
    if study not in SIMULATORS:
        raise ClinpipeError(f"no simulator for study {study!r}", hint=f"use one of {sorted(SIMULATORS)}")
    if n_subjects < 1:
        raise ClinpipeError("--subjects must be at least 1")
    module = importlib.import_module(SIMULATORS[study])
    forms = load_forms(study, root)
    sim = module.run(load_study(study, root), forms, n_subjects, seed)
    if transfer_date is None or transfer_date == sim.transfer_date:
        return sim
    if transfer_date > sim.transfer_date:
        raise ClinpipeError(
            f"--transfer-date {transfer_date} is after {study}'s simulated data cut-off "
            f"{sim.transfer_date} (seed {seed}, {n_subjects} subjects)",
            hint=f"give a date on or before {sim.transfer_date}: the simulated histories end there")
    first = min(sim.history.dates["IC"], default=None)
    if first is None or transfer_date < first:
        raise ClinpipeError(
            f"--transfer-date {transfer_date} is before {study}'s first consent ({first}): "
            f"the transfer would hold no subject", hint=f"give a date from {first} on")
    date_fields = {f.oid: tuple(fd.oid for fd in f.fields if fd.type == "date") for f in forms.forms}
    form_fields = {f.oid: tuple(fd.oid for fd in f.fields) for f in forms.forms}
    return cut_transfer(sim, transfer_date, date_fields, form_fields)


def ensure_new_folder(outdir: Path) -> None:
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())):
        raise ClinpipeError("output folder is not empty", file=outdir,
                            hint="choose a new folder: a transfer folder holds one delivery")


@dataclass
class Delivered:
    outdir: Path
    files: list[Path]
    faults: list[fault_mod.Fault] = field(default_factory=list)


def deliver(sim: SimulatedStudy, fmt: str, outdir: Path, fault_kinds: list[str] | None = None,
            root: Path | None = None, progress=lambda msg: None) -> Delivered:
    """Write `sim` as one transfer folder in `fmt`, with a transfer manifest and, when faults
    were asked for, `faults.json` listing every fault injected."""
    from edc.csv_format import csv_name
    from edc.export import build_frames
    from edc.odm_format import odm_name
    from edc.transfer import rehash_manifest, write_transfer

    if fmt not in FORMATS:
        raise ClinpipeError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    study_cfg, forms = load_study(sim.study, root), load_forms(sim.study, root)
    fault_kinds = fault_kinds or []
    outdir = Path(outdir)
    ensure_new_folder(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        progress(f"building export frames ({sim.n_records():,} records)")
        frames = build_frames(sim, forms, study_cfg, sim.seed)
        file_for = csv_name if fmt == "csv" else (lambda form: odm_name(sim.study))
        frames, faults = fault_mod.inject_records(frames, forms, fault_kinds, sim.seed, file_for)
        progress(f"writing {fmt.upper()} to {outdir}")
        files = write_transfer(frames, forms, study_cfg, outdir, format=fmt,
                               transfer_date=sim.transfer_date)
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
