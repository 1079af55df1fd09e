"""A run killed mid-way (SIGKILL: no clean-up code runs) leaves every previous output intact,
does not move `latest`, and the next run succeeds and clears what the killed one left."""
import hashlib
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
from clinpipe.paths import REPO_ROOT, latest_transfer, point_latest
from edc.transfer import rehash_manifest


def _clinpipe(*args):
    return [str(Path(sys.executable).with_name("clinpipe")), *args]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every visible file under `folder` with its SHA-256 (hidden staging folders left out)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def _kill_when(cmd, env, appears, timeout=600) -> None:
    """Start `cmd`, SIGKILL its process group as soon as a path matching `appears` exists."""
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - t0 < timeout:
            if appears():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return
            time.sleep(0.02)
        raise AssertionError(f"the run ended (rc {proc.returncode}) before the kill point was reached")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_killed_run_keeps_previous_outputs_and_next_run_succeeds(tmp_path, sample_build):
    env = {**os.environ, "CLINPIPE_OUT": str(tmp_path)}
    study = tmp_path / "RS001"
    newest, interim = sample_build["RS001"].base.name, "2025-02-27"
    assert interim < newest
    # the previous good build: the session's sample build of the newest transfer
    shutil.copytree(sample_build["RS001"].base, study / newest, symlinks=True)
    point_latest("RS001", tmp_path, newest)
    before = _snapshot(study / newest)

    # the interim transfer, killed while its TLF outputs are being written (SDTM and ADaM done)
    _kill_when(_clinpipe("run", "--study", "RS001", "--transfer", interim), env,
               lambda: any((study / interim).glob(".tlf.staging-*/t-*.rtf")))
    assert _snapshot(study / newest) == before
    assert os.readlink(study / "latest") == newest
    assert not (study / interim / "tlf").exists()          # nothing half-written in place
    assert list((study / interim).glob(".tlf.staging-*"))  # what SIGKILL left behind

    again = subprocess.run(_clinpipe("run", "--study", "RS001", "--transfer", interim), cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=900, check=False)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert not [p for p in (study / interim).iterdir() if p.name.startswith(".")]
    assert sorted(p.name for p in (study / interim).iterdir()) == ["adam", "reports", "sdtm", "submission", "tlf"]
    # an older cut built later leaves the newest where it was
    assert _snapshot(study / newest) == before
    assert os.readlink(study / "latest") == newest


# -- SDTM and its reconciliation report are swapped in together (issue 13, item 4) -----------
# A run killed at any stage leaves the previous run's SDTM and report, both of them, and the
# next run finishes or clears what the killed one left. Two versions of one transfer tell the
# runs apart: A (the RS001 sample) and B (the same with one CM record's CMTRT blanked, so B's CM
# has one record less and its reconciliation one CM rejection more). Every check reads both
# layers and fails on a mix of A and B.

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
    _kill_when(cmd, dict(os.environ), lambda: STAGES[stage](build))
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
