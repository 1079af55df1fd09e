"""SDTM and its reconciliation report are swapped in together (issue 13, item 4): a run killed
at any stage leaves the previous run's SDTM and report, both of them, and the next run
finishes or clears what the killed one left.

Two versions of one transfer tell the runs apart: A (the RS001 sample) and B (the same with one
CM record's CMTRT blanked, so B's CM has one record less and its reconciliation one CM
rejection more). Every check reads both layers and fails on a mix of A and B.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from clinpipe import outputs
from clinpipe.cli import main
from clinpipe.paths import REPO_ROOT, latest_transfer
from edc.transfer import rehash_manifest


def _version(build: Path) -> str:
    """'A' or 'B': which transfer version the build's SDTM and report are, asserting they agree."""
    rows = len(pd.read_parquet(build / "sdtm" / "cm.parquet", columns=["USUBJID"]))
    rec = pd.read_csv(build / "reports" / "sdtm_reconciliation.csv").set_index("FORM")
    rejected = int(rec.loc["CM", "REJECTED"])
    return {(0, 0): "A", (-1, 1): "B"}[(rows - _A["cm_rows"], rejected - _A["cm_rejected"])]


_A: dict = {}


def _hidden(build: Path) -> list[str]:
    return sorted(p.name for p in build.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    a = root / "A"
    shutil.copytree(latest_transfer("RS001") / "csv", a)
    b = root / "B"
    shutil.copytree(a, b)
    cm = pd.read_csv(b / "cm.csv", dtype=str, keep_default_na=False)
    cm.loc[0, "CMTRT"] = ""
    cm.to_csv(b / "cm.csv", index=False)
    rehash_manifest(b)
    return a, b


def _build_a(out: Path, a: Path) -> Path:
    res = CliRunner().invoke(main, ["sdtm", "--study", "RS001", "--transfer", str(a), "--out", str(out)])
    assert res.exit_code == 0, res.output
    (build,) = [p for p in (out / "RS001").iterdir() if p.is_dir() and not p.is_symlink()]
    if not _A:
        _A["cm_rows"] = len(pd.read_parquet(build / "sdtm" / "cm.parquet", columns=["USUBJID"]))
        rec = pd.read_csv(build / "reports" / "sdtm_reconciliation.csv").set_index("FORM")
        _A["cm_rejected"] = int(rec.loc["CM", "REJECTED"])
    assert _version(build) == "A"
    return build


def _kill_when(cmd, appears, timeout=600) -> None:
    """Start `cmd`, SIGKILL its process group as soon as `appears()` is true."""
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - t0 < timeout:
            if appears():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return
            time.sleep(0.01)
        raise AssertionError(f"the run ended (rc {proc.returncode}) before the kill point")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


STAGES = {
    "writing the SDTM datasets": lambda b: any(b.glob(".sdtm.staging-*/*.xpt")),
    "after the lineage trace": lambda b: any(b.glob(".sdtm.staging-*/lineage/trace.parquet")),
    "writing the reconciliation report": lambda b: any(b.glob(".reports.staging-*/sdtm_reconciliation.xlsx")),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_run_killed_at_each_stage_leaves_the_previous_sdtm_and_report(tmp_path, versions, stage):
    a, b = versions
    out = tmp_path / "out"
    build = _build_a(out, a)
    cmd = [str(Path(sys.executable).with_name("clinpipe")), "sdtm", "--study", "RS001",
           "--transfer", str(b), "--out", str(out)]
    _kill_when(cmd, lambda: STAGES[stage](build))
    assert _version(build) == "A"                     # both layers still the previous run's
    assert _hidden(build), "the kill left nothing behind: it came too late to test anything"

    again = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert _version(build) == "B"
    assert _hidden(build) == []                        # the killed run's staging is gone


class _Killed(BaseException):
    """Stands for SIGKILL: raised from inside the commit, where no clean-up handler runs."""


@pytest.mark.parametrize("renames_done", range(5))
def test_a_commit_killed_between_any_two_renames_is_finished_or_undone(tmp_path, monkeypatch, renames_done):
    """The commit is a journal and four renames; killed after any of them, `recover` (run at
    the start of the next write) ends with both layers from one run: the old ones when the
    journal was not yet in place, the new ones when it was."""
    def write(tag):
        with outputs.staged_layers("S1", {"sdtm": None, "reports": ("sdtm_",)}, tmp_path,
                                   transfer="T1") as folders:
            (folders["sdtm"] / "dm.xpt").write_text(tag)
            (folders["reports"] / "sdtm_reconciliation.csv").write_text(tag)

    write("old")
    calls = []
    real_replace = os.replace

    def replace(src, dst):
        if len(calls) == renames_done:     # the journal's own rename is the first
            raise _Killed
        calls.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace)
    with pytest.raises(_Killed):
        write("new")
    monkeypatch.setattr(outputs.os, "replace", real_replace)
    build = tmp_path / "S1" / "T1"
    outputs.recover(build, ["sdtm", "reports"])      # as the next SDTM run does
    sdtm, report = (build / "sdtm" / "dm.xpt").read_text(), (build / "reports" / "sdtm_reconciliation.csv").read_text()
    assert sdtm == report == ("old" if renames_done == 0 else "new")
    assert _hidden(build) == []
