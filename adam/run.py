"""Build a study's ADaM datasets from an SDTM folder and write them, staged, to out/<STUDY>/<TRANSFER>/adam.

The data cut-off is, in order: the one asked for (`--cutoff`), the SDTM's own TS DCUTDTC
(SDTMIG 3.4: every submission states it), or a fixed date in study.yaml. It is recorded in the
manifest and in ADSL.DCUTDT; records after it are left out of every dataset (`adam.cutoff`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from adam.adae import build_adae
from adam.adeg import build_adeg
from adam.adex import build_adex
from adam.adlb import build_adlb
from adam.adpc import build_adpc
from adam.adpp import build_adpp
from adam.adrs import build_adrs
from adam.adsl import build_adsl, finish_adsl
from adam.adtte import build_adtte
from adam.advs import build_advs
from adam.cutoff import CutoffView
from adam.metadata import CT_VERSION, IG_VERSION, load_spec
from adam.read import Sdtm, SdtmInputError, read_sdtm
from adam.validate import validate_adam
from adam.write import write_adam
from clinpipe.config import load_study
from clinpipe.outputs import staged_layer
from clinpipe.paths import manifest_transfer, mappings_dir


def _adsl(frames, study, built):
    return build_adsl(frames, study, frames.cutoff)


# The builders in build order: each takes (the SDTM as of the cut-off, the study configuration,
# the ADaM datasets built so far) and returns its dataset; one that does not apply to a study
# (no PC data, say) returns None and is not written.
BUILDERS = {
    "ADSL": _adsl,
    "ADLB": lambda frames, study, built: build_adlb(frames, study, built["ADSL"]),
    "ADVS": lambda frames, study, built: build_advs(frames, study, built["ADSL"]),
    "ADEG": lambda frames, study, built: build_adeg(frames, study, built["ADSL"]),
    "ADAE": lambda frames, study, built: build_adae(frames, study, built["ADSL"]),
    "ADRS": lambda frames, study, built: build_adrs(frames, study, built["ADSL"]),     # None without RS
    "ADEX": lambda frames, study, built: build_adex(frames, study, built["ADSL"]),
    "ADPC": lambda frames, study, built: build_adpc(frames, study, built["ADSL"]),   # None without PC
    "ADPP": lambda frames, study, built: build_adpp(built["ADSL"], built.get("ADPC"), study),
    "ADTTE": lambda frames, study, built: build_adtte(frames, study, built["ADSL"]),   # None without RS
}


@dataclass
class AdamRun:
    study: str
    cutoff: dt.date
    datasets: dict[str, pd.DataFrame]
    written: dict[str, dict]
    dropped: dict[str, int]
    folder: Path
    validation: object = None

    @property
    def transfer(self) -> str:
        return self.folder.parent.name


def resolve_cutoff(sdtm: Sdtm, study, asked: dt.date | None) -> dt.date:
    if asked:
        return asked
    ts = sdtm.get("TS")
    if not ts.empty and {"TSPARMCD", "TSVAL"} <= set(ts.columns):
        value = ts.loc[ts.TSPARMCD == "DCUTDTC", "TSVAL"]
        if len(value) and value.iloc[0]:
            try:
                return dt.date.fromisoformat(value.iloc[0][:10])
            except ValueError:
                raise SdtmInputError(f"TS DCUTDTC {value.iloc[0]!r} is not an ISO 8601 date", file=sdtm.files["TS"],
                                     field="TSVAL", hint="fix TS or pass --cutoff YYYY-MM-DD") from None
    if study.cutoff.rule == "fixed" and study.cutoff.date:
        return study.cutoff.date
    raise SdtmInputError("no data cut-off: TS has no DCUTDTC and study.yaml no fixed date", file=sdtm.folder,
                         hint="pass --cutoff YYYY-MM-DD")


def _spec_hashes(study: str) -> dict[str, str]:
    root = mappings_dir()
    files = sorted([*(root / "common" / "adam").glob("*.yaml"), *(root / study / "adam").glob("*.yaml")])
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def build_transfer(sdtm_dir: Path, cut: dt.date) -> str:
    """The build (transfer) an ADaM belongs to: its SDTM's, else the data cut-off date (SDTM
    written elsewhere, e.g. a public pilot study)."""
    return manifest_transfer(sdtm_dir) or cut.isoformat()


def _write_escalation(study_id, study, adsl, adae, cut, out_root, progress, transfer) -> None:
    from adam.escalation import compute_escalation_summary, dlt_disagreements
    from clinpipe.reports import write_report

    table, statement = compute_escalation_summary(adsl, study)
    disagree = dlt_disagreements(adae, study)
    meta = {"study": study_id, "data cut-off": cut.isoformat(), "MTD": statement,
            "rule": "3+3 (study.yaml escalation): DLT-evaluable escalation subjects, rule-based DLT (ADSL.DLTFL)"}
    with staged_layer(study_id, "reports", out_root, replace=("dose_escalation",), transfer=transfer) as folder:
        write_report(folder, "dose_escalation", f"{study_id}: 3+3 dose escalation",
                     {"dose levels": table, "DLT disagreements": disagree}, meta)
    progress(f"  {study_id}: 3+3: {statement} DLT calls: {len(disagree)} record(s) where the investigator "
             "and the protocol rules disagree (reports/dose_escalation)")


def run_adam(study_id: str, sdtm_dir: str | Path, out_root: str | Path | None = None,
             cutoff: dt.date | None = None, progress=print) -> AdamRun:
    t0 = time.perf_counter()
    study = load_study(study_id)
    sdtm = read_sdtm(sdtm_dir)
    cut = resolve_cutoff(sdtm, study, cutoff)
    frames = CutoffView(sdtm, cut)
    datasets: dict[str, pd.DataFrame] = {}
    seconds: dict[str, float] = {}
    for name, builder in BUILDERS.items():
        t1 = time.perf_counter()
        df = builder(frames, study, datasets)
        seconds[name] = round(time.perf_counter() - t1, 2)
        if df is not None:
            datasets[name] = df
    datasets["ADSL"] = finish_adsl(datasets["ADSL"], datasets, study)
    progress(f"  {study_id}: built ADaM {', '.join(datasets)} (cut-off {cut}; "
             f"{sum(frames.dropped.values())} SDTM records after it left out, {time.perf_counter() - t0:.1f} s)")
    written = {}
    transfer = build_transfer(sdtm_dir, cut)
    with staged_layer(study_id, "adam", out_root, transfer=transfer) as folder:
        for name, df in datasets.items():
            written[name] = write_adam(df, load_spec(name, study_id), folder)
        body = {
            "study": study_id, "data_cutoff": cut.isoformat(), "transfer_date": transfer,
            # relative, so that a build moved or rebuilt elsewhere has the same manifest bytes
            "sdtm_folder": Path(os.path.relpath(Path(sdtm_dir).resolve(), folder.parent.resolve() / "adam")).as_posix(),
            "sdtm_files_sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                  for p in sorted(sdtm.files.values())},
            "spec_files_sha256": _spec_hashes(study_id),
            "standards": {"ADaMIG": IG_VERSION, "ADaM CT": CT_VERSION},
            "records_after_cutoff_left_out": dict(sorted(frames.dropped.items())),
            "datasets": {n: {"rows": w["rows"], "xpt_sha256": w["sha256"]["xpt"],
                             "parquet_sha256": w["sha256"]["parquet"]} for n, w in written.items()},
        }
        (folder / "manifest.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    final = Path(folder).parent / "adam"
    for info in written.values():
        info["xpt"], info["parquet"] = final / info["xpt"].name, final / info["parquet"].name
    if getattr(study, "escalation", None) is not None and "DLTEVLFL" in datasets["ADSL"].columns:
        _write_escalation(study_id, study, datasets["ADSL"], datasets["ADAE"], cut, out_root, progress, transfer)
    if os.environ.get("CLINPIPE_TIMINGS"):
        # wall seconds per builder (including reading the SDTM it asks for first), for the
        # benchmark; kept out of the outputs so that they stay byte-identical across runs
        Path(os.environ["CLINPIPE_TIMINGS"]).write_text(json.dumps(seconds, indent=2) + "\n", encoding="utf-8")
    data = {n: w.pop("data") for n, w in written.items()}
    validation = validate_adam(data, {n: load_spec(n, study_id) for n in data}, cut)
    _write_conformance(study_id, validation, cut, out_root, transfer)
    progress(f"  {study_id}: wrote ADaM to {final} ({time.perf_counter() - t0:.1f} s); ADaM conformance: "
             f"{len(validation.open('ERROR'))} open ERROR, {len(validation.open('WARNING'))} WARNING")
    return AdamRun(study_id, cut, data, written, frames.dropped, final, validation)


def _write_conformance(study_id, validation, cut, out_root, transfer) -> None:
    from clinpipe.reports import write_report

    meta = {"study": study_id, "data cut-off": cut.isoformat(),
            "standards": f"ADaMIG {IG_VERSION}, ADaM CT {CT_VERSION}",
            "rules": "ADS-* schemas from the dataset specs; AD001-AD007 ADaM rules (adam/validate.py)"}
    with staged_layer(study_id, "reports", out_root, replace=("adam_conformance",), transfer=transfer) as folder:
        write_report(folder, "adam_conformance", f"{study_id}: ADaM conformance",
                     {"details": validation.findings, "summary": validation.summary()}, meta)
