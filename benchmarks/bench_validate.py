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
    try:
        wall, rss = run([str(CLI), "validate", "--study", "RS001", "--sdtm", str(args.sdtm), "--out", str(out)])
    except SystemExit:   # exit 1 = ERROR findings present; the timing still counts
        wall, rss = float("nan"), float("nan")
    print(f"validate RS001 ({records} datasets in {args.sdtm}): {wall:.1f} s, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
