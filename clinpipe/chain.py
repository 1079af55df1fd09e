"""The whole chain for one study and one transfer, in process: raw summary -> SDTM ->
conformance -> ADaM -> TLF -> submission package -> change report, into
`out/<STUDY>/<TRANSFER>/`. This is `clinpipe run`; the Dagster assets run the same steps one
asset at a time. Like the blocking checks in Dagster, open SDTM or ADaM ERROR findings stop
the chain before the layers that would read the bad data."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from clinpipe.outputs import staged_layer
from clinpipe.paths import build_dir, built_transfers, latest_transfer, point_latest

STEPS = ("raw summary", "SDTM", "SDTM conformance", "ADaM", "TLF", "submission package", "change report")


@dataclass
class StudyRun:
    study: str
    transfer: str = ""
    base: Path | None = None
    stopped_at: str = ""                    # the blocking check that stopped the chain, if any
    open_errors: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    changes: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.stopped_at


def run_study(study: str, transfer: Path | None = None, out_root: Path | None = None, progress=print,
              package: bool = True, encoding: str = "utf-8") -> StudyRun:
    """Build one transfer (default: the newest under data/raw/<STUDY>/) through every layer.
    `encoding`: of the CSV files that are not valid UTF-8."""
    from adam.run import run_adam
    from clinpipe.raw_summary import summarise_study
    from sdtm.run import write_sdtm
    from sdtm.validate.run import validate_run
    from tlf.run import run_tlf

    folder = Path(transfer) if transfer else latest_transfer(study)
    result = StudyRun(study)
    clock = _Clock(result, progress)
    with clock.step("raw summary"):
        summary = summarise_study(study, folder, out_root, progress, encoding=encoding)
    with clock.step("SDTM"):
        sdtm = write_sdtm(summary.transfer, out_root, progress, keep_raw=False)
    result.transfer, result.base = sdtm.transfer, sdtm.folder.parent
    with clock.step("SDTM conformance"):
        validation, page = validate_run(sdtm, out_root)
    result.open_errors["SDTM"] = len(validation.open("ERROR"))
    if result.open_errors["SDTM"]:
        result.stopped_at = f"SDTM conformance: {result.open_errors['SDTM']} open ERROR finding(s), see {page}"
        return result
    with clock.step("ADaM"):
        adam = run_adam(study, sdtm.folder, out_root, progress=progress)
    result.open_errors["ADaM"] = len(adam.validation.open("ERROR"))
    if result.open_errors["ADaM"]:
        result.stopped_at = (f"ADaM conformance: {result.open_errors['ADaM']} open ERROR finding(s), see "
                             f"{result.base / 'reports' / 'adam_conformance.html'}")
        return result
    with clock.step("TLF"):
        run_tlf(study, adam.folder, out_root, progress=progress)
    if package:
        from submission.package import build_package

        with clock.step("submission package"):
            build_package(study, result.base, progress)
    with clock.step("change report"):
        result.changes = report_changes(study, result.transfer, out_root, progress)
    point_latest(study, out_root, result.transfer)
    return result


class _Clock:
    """Numbered progress lines and seconds per step."""

    def __init__(self, result: StudyRun, progress):
        self.result, self.progress, self.n = result, progress, 0

    @contextlib.contextmanager
    def step(self, name: str):
        self.n += 1
        self.progress(f"{self.result.study} [{self.n}/{len(STEPS)}] {name}")
        t0 = time.perf_counter()
        yield
        self.result.seconds[name] = round(time.perf_counter() - t0, 2)


def previous_transfer(study: str, transfer: str, out_root: Path | None = None) -> str | None:
    """The newest transfer before `transfer` whose build got as far as the TLF outputs."""
    earlier = [t for t in built_transfers(study, out_root, "tlf") if t < transfer]
    return earlier[-1] if earlier else None


def report_changes(study: str, transfer: str, out_root: Path | None = None, progress=print,
                   previous: str | None = None) -> dict:
    """Compare the build of `transfer` with `previous` (default: the one built before it); write
    reports/changes.* into this transfer's build. Returns what Dagster shows as metadata."""
    previous = previous or previous_transfer(study, transfer, out_root)
    if previous is None:
        progress(f"  {study}: change report: {transfer} is the first transfer built")
        return {"compared_with": "none: the first transfer built"}
    from changes import compare_builds, write_change_report

    report = compare_builds(study, build_dir(study, out_root, previous), build_dir(study, out_root, transfer))
    with staged_layer(study, "reports", out_root, replace=("changes.", "ard_changes."),
                      transfer=transfer) as folder:
        paths = write_change_report(report, folder)
    html = build_dir(study, out_root, transfer) / "reports" / Path(paths["html"]).name
    progress(f"  {study}: changes since {previous} -> {html}")
    return {"compared_with": previous, "report": str(html), **report.to_metadata()}
