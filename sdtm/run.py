"""Raw transfer -> `out/<STUDY>/<TRANSFER>/sdtm/` (XPT v5 + parquet per dataset, manifest.json)
and `.../reports/sdtm_reconciliation.*` (reconciliation, rejections, mapping issues), TRANSFER
being the export's transfer date.

Both layers are staged: a failed run leaves the previous good SDTM and reports as they were.
The same inputs give byte-identical files (the XPT header time is the transfer date).
"""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clinpipe.config import load_study
from clinpipe.outputs import staged_layer
from clinpipe.paths import transfer_id
from clinpipe.reports import write_report
from edc.read import RawTransfer, read_transfer
from edc.transfer import generator_version
from sdtm import metadata
from sdtm.build import SdtmBuild, build_sdtm
from sdtm.conform import split_long_text
from sdtm.trial_design import build_trial_design
from sdtm.write import write_dataset


@dataclass
class SdtmRun:
    study: str
    raw: RawTransfer
    build: SdtmBuild
    datasets: dict[str, pd.DataFrame]
    written: dict[str, dict]
    folder: Path

    @property
    def transfer(self) -> str:
        """The build's transfer id (the name of the folder holding sdtm/)."""
        return self.folder.parent.name


def sdtm_datasets(raw: RawTransfer, build: SdtmBuild) -> dict[str, pd.DataFrame]:
    """Mapped domains (text over 200 characters split into SUPP--) plus trial design."""
    datasets = build.datasets()
    for name in [n for n in datasets if not n.startswith("SUPP")]:
        df, supp = split_long_text(datasets[name], name, datasets.get(f"SUPP{name}"))
        datasets[name] = df
        if supp is not None and len(supp):
            datasets[f"SUPP{name}"] = supp
    study = load_study(raw.study)
    dm = datasets["DM"]
    enrolled = dm["ARMNRS"] != "SCREEN FAILURE"   # TS ACTSUB counts enrolled subjects (CT C98735)
    trial = build_trial_design(
        study, raw.forms, data_cutoff=study.cutoff_date(raw.transfer_date),
        first_subject_date=_first_date(dm["RFICDTC"]), last_subject_date=None,
        actual_subjects=int(enrolled.sum()))
    datasets.update(trial)
    return dict(sorted(datasets.items()))


def _first_date(dtc: pd.Series) -> dt.date | None:
    full = dtc[dtc.str.len() >= 10].str[:10]
    return dt.date.fromisoformat(full.min()) if len(full) else None


def run_sdtm(study: str, transfer: Path, out_root: Path | None = None, progress=print) -> SdtmRun:
    return write_sdtm(read_transfer(transfer, study=study), out_root, progress)


def write_sdtm(raw: RawTransfer, out_root: Path | None = None, progress=print) -> SdtmRun:
    t0 = time.perf_counter()
    study = raw.study
    build = build_sdtm(raw)
    datasets = sdtm_datasets(raw, build)
    progress(f"  {study}: mapped {len(datasets)} SDTM datasets "
             f"({sum(len(d) for d in datasets.values()):,} records, {time.perf_counter() - t0:.1f} s)")
    stamp = dt.datetime.combine(raw.transfer_date or dt.date(1960, 1, 1), dt.time())
    written = {}
    transfer = transfer_id(raw.transfer_date or stamp.date())
    with staged_layer(study, "sdtm", out_root, transfer=transfer) as folder:
        for name, df in datasets.items():
            written[name] = write_dataset(df, name, folder, timestamp=stamp)
        # Keep the frames as written (conformed: Num as float), so validation sees what a reviewer reads.
        datasets = {name: written[name].pop("data") for name in datasets}
        write_trace(build, folder)
        _write_manifest(folder, raw, build, written)
    final = folder.parent / "sdtm"
    for info in written.values():  # the staging folder became `final`
        info["xpt"], info["parquet"] = final / info["xpt"].name, final / info["parquet"].name
    _write_reports(study, raw, build, written, out_root, transfer)
    progress(f"  {study}: wrote SDTM to {final} ({time.perf_counter() - t0:.1f} s)")
    return SdtmRun(study, raw, build, datasets, written, final)


def write_trace(build: SdtmBuild, folder: Path) -> Path:
    """`lineage/trace.parquet`: which raw form record (FORM, RECORDID) each SDTM record came
    from, keyed by DOMAIN, USUBJID and --SEQ. It travels with the SDTM it describes (same
    staging swap), so TLF lineage (`clinpipe trace`) can follow an analysis number back to the
    EDC record; in a subfolder, so that nothing reading the folder's datasets takes it for one."""
    cols = ["DOMAIN", "USUBJID", "SEQ", "FORM", "RECORDID"]
    types = {"DOMAIN": str, "USUBJID": str, "SEQ": float, "FORM": str, "RECORDID": str}
    parts = [res.trace.assign(DOMAIN=name)[cols].astype(types)
             for name, res in build.results.items() if len(res.trace)]
    trace = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)).astype(types)
    trace = trace.sort_values(cols, kind="stable").reset_index(drop=True)
    path = folder / "lineage" / "trace.parquet"
    path.parent.mkdir(exist_ok=True)
    trace.to_parquet(path, index=False)
    return path


def _portable(path: Path) -> str:
    """The transfer folder relative to the working directory when inside it, so two clones
    build the same manifest bytes."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _write_manifest(folder: Path, raw: RawTransfer, build: SdtmBuild, written: dict) -> None:
    """Provenance beside the data: inputs, specs, code and standards versions, outputs."""
    body = {
        "study": raw.study,
        "transfer_date": str(raw.transfer_date),
        "raw_format": raw.format,
        "raw_transfer": _portable(raw.transfer_dir),
        "raw_files_sha256": dict(sorted(raw.file_hashes.items())),
        "spec_files_sha256": dict(sorted(build.spec_hashes.items())),
        "code": generator_version(),
        "standards": {"SDTMIG": metadata.IG_VERSION, "SDTM CT": metadata.CT_VERSION},
        "datasets": {n: {"rows": w["rows"], "xpt_sha256": w["sha256"]["xpt"],
                         "parquet_sha256": w["sha256"]["parquet"]} for n, w in sorted(written.items())},
    }
    (folder / "manifest.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def _write_reports(study: str, raw: RawTransfer, build: SdtmBuild, written: dict, out_root,
                   transfer: str) -> None:
    summary = pd.DataFrame([(n, metadata.domain(n).label, w["rows"]) for n, w in written.items()],
                           columns=["DATASET", "LABEL", "RECORDS"])
    meta = {"study": study, "transfer date": str(raw.transfer_date), "raw format": raw.format,
            "standards": f"SDTMIG {metadata.IG_VERSION}, SDTM CT {metadata.CT_VERSION}",
            "rule": "every raw record is mapped or rejected with a reason; UNACCOUNTED must be 0; "
                    "every collected field is mapped or listed as not submitted with a reason "
                    "(field coverage); UNMAPPED must be none"}
    with staged_layer(study, "reports", out_root, replace=("sdtm_",), transfer=transfer) as folder:
        write_report(folder, "sdtm_reconciliation", f"{study}: raw to SDTM reconciliation",
                     {"reconciliation": build.reconciliation, "field coverage": build.field_coverage,
                      "rejections": build.rejections,
                      "mapping issues": build.issues, "datasets": summary}, meta)
