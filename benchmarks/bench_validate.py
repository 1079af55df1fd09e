"""Benchmark: validating SDTM of a 10,000-subject RS001 export. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_validate.py --sdtm DIR   (DIR: out/RS001/sdtm of bench_sdtm)

Times `clinpipe validate` (schemas + cross-dataset rules + reports) in its own process.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from bench_simulate import run  # same child-process timing

CLI = Path(sys.executable).with_name("clinpipe")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdtm", type=Path, required=True)
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    records = sum(1 for _ in args.sdtm.glob("*.xpt"))
    out = Path(tempfile.mkdtemp(prefix="clinpipe-bench-validate-"))
    # exit 1 only says ERROR findings were found; the timing counts either way
    wall, rss = run([str(CLI), "validate", "--study", "RS001", "--sdtm", str(args.sdtm), "--out", str(out)],
                    check=False)
    n = sum(len(pd.read_parquet(p, columns=["STUDYID"])) for p in args.sdtm.glob("*.parquet"))
    print(f"validate RS001: {records} datasets, {n:,} records in {args.sdtm}: {wall:.1f} s, "
          f"peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
