"""The run log: `<out>/<STUDY>/run.log`, what a command printed, as NOTE/WARNING/ERROR lines.

SAS users look for the log first: it is the record of the last run, read after the console is
gone (a nightly job, a run someone else started). Every study command writes it while it runs,
so a killed run leaves a log that stops where the run stopped, without the closing line. The
log is replaced by the next command run on the study; the outputs keep their own reports.
"""
from __future__ import annotations

import datetime as dt
import functools
import os
import resource
import sys
import time
from pathlib import Path

from clinpipe.errors import ClinpipeError

LOG_NAME = "run.log"
_ERROR_MARKS = ("error:", "failed")
_WARNING_MARKS = ("warning:",)


def level(line: str) -> str:
    """NOTE, WARNING or ERROR for one printed line, by the words the commands use."""
    text = line.strip().lower()
    if text.startswith(_ERROR_MARKS) or ": failed" in text or "stopped at" in text:
        return "ERROR"
    if text.startswith(_WARNING_MARKS):
        return "WARNING"
    return "NOTE"


def log_line(line: str) -> str:
    """One printed line as the log shows it: a level word, then the text (a line that already
    starts with its level word is not given a second one)."""
    word = level(line)
    text = line.strip()
    for mark in ("error:", "warning:", "note:"):
        if text.lower().startswith(mark):
            text = text[len(mark):].lstrip()
            break
    return f"{word}: {text}"


class _Tee:
    """A text stream that writes to the console stream and, line by line, to the log."""

    def __init__(self, stream, log):
        self._stream, self._log, self._partial = stream, log, ""
        self.encoding = getattr(stream, "encoding", "utf-8") or "utf-8"
        self.errors = getattr(stream, "errors", "strict") or "strict"

    def write(self, text: str) -> int:
        self._stream.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._log.write(log_line(line) + "\n")
        self._log.flush()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def close_line(self) -> None:
        if self._partial.strip():
            self._log.write(log_line(self._partial) + "\n")
        self._partial = ""


def log_path(study: str, root: str | Path | None = None) -> Path:
    from clinpipe.paths import out_root

    return out_root(root) / study / LOG_NAME


def _invocation(name: str, params: dict) -> str:
    import click

    from edc.export import generator_version

    ctx = click.get_current_context(silent=True)
    opts = {p.name: max(p.opts, key=len) for p in ctx.command.params} if ctx else {}
    shown = " ".join(opts.get(k, k) + ("" if v is True else f" {v}") for k, v in params.items()
                     if v not in (None, False, (), []))
    return f"{generator_version()}: {name} {shown}".rstrip()


def logged(command):
    """Decorate a click command callback that takes `study` (and optionally `out_root`): its
    console output goes to the run log too, with a header (command, arguments, start time) and
    a closing line (exit status, real and CPU time, as SAS closes each step)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        study = kwargs.get("study")
        if not study:
            return command(*args, **kwargs)
        path = log_path(study, kwargs.get("out_root"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as log:
            started, cpu = time.perf_counter(), time.process_time()
            log.write(f"NOTE: {_invocation(command.__name__, kwargs)}\n")
            log.write(f"NOTE: started {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} "
                      f"on {os.uname().nodename}, in {Path.cwd()}\n")
            out, err = _Tee(sys.stdout, log), _Tee(sys.stderr, log)
            saved = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = out, err
            status = "exit 0"
            try:
                return command(*args, **kwargs)
            except ClinpipeError as exc:
                status = "exit 2"
                log.write(log_line(f"error: {exc.message}") + "\n")
                raise
            except SystemExit as exc:
                status = f"exit {exc.code}"
                raise
            except KeyboardInterrupt:
                status = "interrupted"
                log.write("ERROR: interrupted (Ctrl-C); outputs of earlier runs are left as they were\n")
                raise
            except BaseException as exc:
                status = "failed"
                log.write(f"ERROR: {type(exc).__name__}: {exc}\n")
                raise
            finally:
                sys.stdout, sys.stderr = saved
                out.close_line()
                err.close_line()
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                word = "NOTE" if status == "exit 0" else "ERROR" if status != "exit 1" else "WARNING"
                log.write(f"{word}: {command.__name__} finished ({status}): real time "
                          f"{time.perf_counter() - started:.1f} s, CPU time "
                          f"{time.process_time() - cpu:.1f} s, peak memory {peak:,.0f} MiB\n")
    return run
