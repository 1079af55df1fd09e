"""Benchmark: `clinpipe simulate` and `clinpipe read` at scale. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_simulate.py [--subjects 10000] [--study RS001] [--formats csv,odm]

Each step runs as its own process so its peak RSS is measured alone (getrusage of the child).
Prints one line per step: wall time, CPU time, peak RSS, output size. Copy the figures into
RESULTS.md. `--no-read` times the generator only.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

CLI = Path(sys.executable).with_name("clinpipe")


def run(cmd: list[str], check: bool = True) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one child process (`check`: fail on a
    non-zero exit)."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        # The child's own progress output would bury the figures: send it to /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execv(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if check and os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="RS001")
    ap.add_argument("--subjects", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--formats", default="csv,odm")
    ap.add_argument("--no-read", action="store_true", help="time `clinpipe simulate` only")
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    work = Path(tempfile.mkdtemp(prefix="clinpipe-bench-"))
    try:
        for fmt in args.formats.split(","):
            out = work / fmt
            wall, cpu, rss = run([str(CLI), "simulate", "--study", args.study, "--subjects",
                                  str(args.subjects), "--seed", str(args.seed), "--format", fmt,
                                  "--out", str(out)])
            print(f"simulate {args.study} n={args.subjects} {fmt}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
                  f"peak RSS {rss:.0f} MiB, output {size_mb(out):.1f} MB")
            if args.no_read:
                continue
            wall, cpu, rss = run([str(CLI), "read", "--study", args.study, "--transfer", str(out)])
            print(f"read     {args.study} n={args.subjects} {fmt}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
                  f"peak RSS {rss:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
