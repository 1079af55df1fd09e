"""Benchmark: the whole pipeline (raw -> SDTM -> ADaM -> TLF -> submission package) in process
(`clinpipe run`) and through Dagster (the `<STUDY>_submission_build` job of one transfer
partition), each in its own process. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_orchestration.py                 # both sample studies
    .venv/bin/python benchmarks/bench_orchestration.py --subjects 10000 # + a simulated RS001

Prints wall time and peak RSS (wait4) of each, and Dagster's own overhead: the difference.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
DAGSTER_RUN = """
import sys
from pipelines.execute import failures, materialise
res = materialise(sys.argv[1], sys.argv[2], quiet=True)
sys.exit(0 if res.success else print(failures(res)) or 1)
"""


def run(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process; its output kept in a log file."""
    t0 = time.perf_counter()
    log = Path(tempfile.gettempdir()) / "bench_orchestration_last.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)} (its output: {log})")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def both_ways(study: str, transfer: str, raw_root: Path, work: Path) -> None:
    env = {**os.environ, "CLINPIPE_RAW": str(raw_root)}
    env.pop("DAGSTER_HOME", None)   # an ephemeral instance: nothing kept
    rows = []
    for how, cmd in (("in-process (clinpipe run)", [str(BIN / "clinpipe"), "run", "--study", study,
                                                    "--transfer", transfer]),
                     ("Dagster submission_build", [sys.executable, "-c", DAGSTER_RUN, study, transfer])):
        out = work / how.split()[0].lower()
        shutil.rmtree(out, ignore_errors=True)
        wall, rss = run(cmd, env={**env, "CLINPIPE_OUT": str(out)})
        rows.append((how, wall, rss))
        print(f"{study} {transfer} {how}: {wall:.1f} s, peak RSS {rss / 1024:.2f} GiB", flush=True)
    print(f"{study} {transfer} Dagster overhead: {rows[1][1] - rows[0][1]:+.1f} s "
          f"({(rows[1][1] / rows[0][1] - 1) * 100:+.0f} %)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=0, help="also a simulated RS001 of this many subjects")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-samples", action="store_true", help="skip the two sample studies")
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="clinpipe-bench-orch-"))
    try:
        from clinpipe.paths import latest_transfer, raw_data_dir
        for study in () if args.no_samples else ("RS001", "GLOCART"):
            both_ways(study, latest_transfer(study).name, raw_data_dir(), work)
        if args.subjects:
            raw = work / "raw"
            wall, _ = run([str(BIN / "clinpipe"), "simulate", "--study", "RS001", "--subjects", str(args.subjects),
                           "--seed", str(args.seed), "--format", "csv",
                           "--out", str(raw / "RS001" / "{transfer_date}" / "csv")])
            transfer = next((raw / "RS001").iterdir()).name
            print(f"(simulate {args.subjects} subjects: {wall:.0f} s)", flush=True)
            both_ways("RS001", transfer, raw, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
