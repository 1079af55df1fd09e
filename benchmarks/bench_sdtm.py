"""Benchmark: SDTM for a 10,000-subject RS001 export. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_sdtm.py [--subjects 10000] [--transfer DIR]

Simulates the export once (unless --transfer names one), then times `clinpipe sdtm` on it in
its own process (wall time, peak RSS from wait4) and prints records per SDTM dataset.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_simulate import run  # same child-process timing

from clinpipe.paths import study_out

CLI = Path(sys.executable).with_name("clinpipe")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--transfer", type=Path, default=None, help="an existing RS001 CSV transfer")
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    work = Path(tempfile.mkdtemp(prefix="clinpipe-bench-sdtm-"))
    try:
        transfer = args.transfer
        if transfer is None:
            transfer = work / "csv"
            wall, _ = run([str(CLI), "simulate", "--study", "RS001", "--subjects", str(args.subjects),
                           "--seed", str(args.seed), "--format", "csv", "--out", str(transfer)])
            print(f"(simulated the export in {wall:.0f} s)")
        wall, rss = run([str(CLI), "sdtm", "--study", "RS001", "--transfer", str(transfer),
                         "--out", str(work / "out")])
        manifest = json.loads((study_out("RS001", "sdtm", work / "out") / "manifest.json").read_text())
        rows = {name: d["rows"] for name, d in manifest["datasets"].items()}
        size = sum(p.stat().st_size for p in (study_out("RS001", "sdtm", work / "out")).iterdir()) / 1e6
        print(f"sdtm RS001 n={args.subjects}: {wall:.1f} s, peak RSS {rss:.0f} MiB, "
              f"{sum(rows.values()):,} records in {len(rows)} datasets, {size:.0f} MB written")
        print("  " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
