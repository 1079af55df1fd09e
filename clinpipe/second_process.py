"""Work on the second core: a function run in a forked child process, its result or its error
handed back.

Mapping is pandas work on object columns, which holds the GIL: a thread does not help, a
process does. A forked child starts with the parent's memory (the raw frames, DM, the specs)
without copying or pickling any of it; only what it returns crosses back, pickled through a
file. `processes()` says whether to fork at all (Linux, two cores or more, CLINPIPE_PROCESSES
not 1); a caller that gets 1 does the work in its own process.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clinpipe.errors import ClinpipeError

ENV = "CLINPIPE_PROCESSES"


def processes() -> int:
    """How many processes a build may use: 1 or 2 (CLINPIPE_PROCESSES caps it)."""
    cap = os.environ.get(ENV, "").strip()
    if cap and cap not in {"1", "2"}:
        raise ClinpipeError(f"{ENV}={cap!r} is not a process count",
                            hint=f"set {ENV} to 1 (one process) or 2, or unset it")
    return min(int(cap or 2), 2 if can_fork() else 1)


def can_fork() -> bool:
    """Linux, fork available and two cores or more."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods() and cores >= 2


class Elsewhere:
    """`work()` running in a forked child from construction on; `result()` waits for it and
    returns what it returned, or raises what it raised (a ClinpipeError as itself)."""

    def __init__(self, work: Callable[[], Any], what: str):
        self.what = what
        self._dir = tempfile.TemporaryDirectory(prefix="clinpipe-")
        self._out = Path(self._dir.name) / "result.pickle"
        # Objects that exist now are left out of the parent's garbage collections until the
        # child is done: a collection touches every object, which would copy each shared page.
        gc.freeze()
        self._proc = multiprocessing.get_context("fork").Process(
            target=_child, args=(work, self._out), name=f"clinpipe {what}", daemon=True)
        self._proc.start()

    def result(self) -> Any:
        try:
            self._proc.join()
            if not self._out.exists():
                raise ClinpipeError(
                    f"the second process ({self.what}) ended with exit code {self._proc.exitcode} "
                    "and no result (killed, or out of memory?)",
                    hint=f"nothing was written; rerun, or set {ENV}=1 to build in one process")
            with self._out.open("rb") as f:
                status, value = pickle.load(f)
        finally:
            self._done()
        if status == "error":
            raise value
        return value

    def cancel(self) -> None:
        """Stop the child (the parent failed first) and let its result go."""
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join()
        self._done()

    def _done(self) -> None:
        gc.unfreeze()
        self._dir.cleanup()


def _child(work: Callable[[], Any], out: Path) -> None:
    try:
        reply = ("ok", work())
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        reply = ("error", _portable_error(exc))
    part = out.with_suffix(".part")
    with part.open("wb") as f:
        pickle.dump(reply, f, protocol=pickle.HIGHEST_PROTOCOL)
    part.rename(out)


def _portable_error(exc: BaseException) -> BaseException:
    """The error itself when it survives pickling (a bug's with the child's traceback as a
    note), else a RuntimeError with its traceback."""
    if not isinstance(exc, ClinpipeError):
        exc.add_note("in the second process:\n" + "".join(traceback.format_exception(exc)))
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        text = "".join(traceback.format_exception(exc))
        return RuntimeError(f"in the second process: {type(exc).__name__}: {exc}\n{text}")
