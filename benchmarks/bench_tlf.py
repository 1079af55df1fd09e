"""Benchmark: every TLF output of a 10,000-subject RS001 study. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_tlf.py [--subjects 10000] [--adam-root DIR]

Builds the export, SDTM and ADaM once (unless --adam-root names an out root holding
RS001/adam and RS001/sdtm), then times `clinpipe tlf --study RS001` in its own process (wall
time, peak RSS from wait4) and prints the per-output seconds from its progress lines, the
ARD and lineage sizes and the output bytes.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from bench_simulate import run, size_mb  # same child-process timing

from clinpipe.paths import study_out

CLI = Path(sys.executable).with_name("clinpipe")
_LINE = re.compile(r"\[(\d+)/(\d+)\] (\S+) .*\(([\d,]+) ARD rows, ([\d.]+) s\)")


def run_logged(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """`run`, with the child's progress lines kept (they carry the per-output seconds)."""
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, log.read_text(encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--adam-root", type=Path, default=None,
                    help="an out root with RS001/sdtm and RS001/adam already built")
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    work = Path(tempfile.mkdtemp(prefix="clinpipe-bench-tlf-"))
    try:
        root = args.adam_root
        if root is None:
            root = work / "out"
            steps = [["simulate", "--study", "RS001", "--subjects", str(args.subjects), "--seed",
                      str(args.seed), "--format", "csv", "--out", str(work / "csv")],
                     ["sdtm", "--study", "RS001", "--transfer", str(work / "csv"), "--out",
                      str(root)],
                     ["adam", "--study", "RS001", "--out", str(root)]]
            for step in steps:
                wall, _ = run([str(CLI), *step])
                print(f"({step[0]}: {wall:.0f} s)")
        out = work / "tlf-out"
        wall, rss, log = run_logged([str(CLI), "tlf", "--study", "RS001", "--adam",
                                     str(study_out("RS001", "adam", root)), "--out", str(out)],
                                    work / "tlf.log")
        folder = study_out("RS001", "tlf", out)
        n_ard = sum(len(pd.read_parquet(p)) for p in (folder / "ard").glob("*.parquet"))
        lineage = len(pd.read_parquet(folder / "lineage.parquet", columns=["ARDROW"]))
        subjects = len(pd.read_parquet(study_out("RS001", "adam", root) / "adsl.parquet", columns=["USUBJID"]))
        print(f"tlf RS001 n={subjects}: {wall:.1f} s, peak RSS {rss:.0f} MiB, "
              f"{len(list(folder.glob('*.rtf')))} outputs, {n_ard:,} ARD rows, "
              f"{lineage:,} lineage rows, {size_mb(folder):.0f} MB")
        per = sorted(((float(m[4]), m[2], m[3]) for m in _LINE.findall(log)), reverse=True)
        print("  slowest outputs (s): " +
              ", ".join(f"{oid} {sec:.1f} ({rows} rows)" for sec, oid, rows in per[:8]))
        print(f"  the outputs themselves: {sum(p[0] for p in per):.1f} s; the rest is lineage, "
              "index and trace pages")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
