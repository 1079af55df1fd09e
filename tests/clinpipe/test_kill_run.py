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

from clinpipe.paths import REPO_ROOT, point_latest


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
