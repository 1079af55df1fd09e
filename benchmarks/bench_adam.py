"""Benchmark: ADaM for a 10,000-subject RS001 export. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_adam.py [--subjects 10000] [--transfer DIR | --sdtm DIR]

Simulates the export and builds its SDTM once (unless --transfer or --sdtm names one), then
times, each in its own process (wall time, peak RSS from wait4): reading the SDTM folder alone
(every dataset, parquet) and `clinpipe adam` (read + every builder + writers + checks); prints
records per ADaM dataset.
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
READ_ONLY = ("from adam.read import read_sdtm; import sys; s = read_sdtm(sys.argv[1]); "
             "print(sum(len(s.get(n)) for n in s.files))")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--transfer", type=Path, default=None, help="an existing RS001 CSV transfer")
    ap.add_argument("--sdtm", type=Path, default=None, help="an existing RS001 SDTM folder")
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    work = Path(tempfile.mkdtemp(prefix="clinpipe-bench-adam-"))
    try:
        sdtm = args.sdtm
        if sdtm is None:
            transfer = args.transfer
            if transfer is None:
                transfer = work / "csv"
                wall, _ = run([str(CLI), "simulate", "--study", "RS001", "--subjects", str(args.subjects),
                               "--seed", str(args.seed), "--format", "csv", "--out", str(transfer)])
                print(f"(simulated the export in {wall:.0f} s)")
            wall, _ = run([str(CLI), "sdtm", "--study", "RS001", "--transfer", str(transfer), "--out", str(work)])
            print(f"(built the SDTM in {wall:.0f} s)")
            sdtm = study_out("RS001", "sdtm", work)
        wall, rss = run([sys.executable, "-c", READ_ONLY, str(sdtm)])
        print(f"read SDTM ({sdtm}): {wall:.1f} s, peak RSS {rss:.0f} MiB")
        os.environ["CLINPIPE_TIMINGS"] = str(work / "timings.json")
        wall, rss = run([str(CLI), "adam", "--study", "RS001", "--sdtm", str(sdtm), "--out", str(work / "out")])
        manifest = json.loads((study_out("RS001", "adam", work / "out") / "manifest.json").read_text())
        rows = {name: d["rows"] for name, d in manifest["datasets"].items()}
        print(f"adam RS001 n={args.subjects}: {wall:.1f} s, peak RSS {rss:.0f} MiB, "
              f"{sum(rows.values()):,} records in {len(rows)} datasets")
        print("  " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
        timings = json.loads((work / "timings.json").read_text())
        print("  build seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
