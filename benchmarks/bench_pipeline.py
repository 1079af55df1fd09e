"""Benchmark, the contract of issue 18: raw -> validated SDTM at N subjects. Run by hand, not a test.

    .venv/bin/python benchmarks/bench_pipeline.py --subjects 1000,3000,10000
    .venv/bin/python benchmarks/bench_pipeline.py --subjects 10000 --raw /tmp/bench10k/raw

For each N: simulate the export (set-up, not counted), then `clinpipe sdtm` and `clinpipe
validate`, each in its own process, with wall time, CPU time (user + system of it and its
children), peak memory and records and bytes. Peak memory is that of the whole process tree
(a step may fork a second process): the sum of every process's PSS, sampled every 0.1 s
(shared pages counted once), beside wait4's peak RSS of the largest single process. Beside them, the I/O floor measured in the same run on the same data: every
raw CSV read with pyarrow, every SDTM dataset written as parquet from memory and the XPT bytes
written at disk speed — what no implementation can avoid. The ratio pipeline / floor says how far
from it the code is. With two or more N, the scaling exponent (log-log slope of time on N) shows
whether time is linear in subjects. `--markdown` prints the rows for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CLI = Path(sys.executable).with_name("clinpipe")


@dataclass
class Step:
    name: str
    subjects: int
    wall: float          # s
    cpu: float           # s, user + system of the child
    rss: float           # GiB, peak RSS of the largest process (wait4)
    tree: float = 0.0    # GiB, peak of the process tree's summed PSS (sampled)
    records: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


def child(cmd: list[str], log: Path, ok_codes=(0,)) -> tuple[float, float, float, float, int]:
    """Wall s, CPU s, peak RSS GiB (largest process), peak tree PSS GiB and exit code of one
    child process; its output in `log`."""
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        sampler = TreeMemory(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        tree = sampler.stop()
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in ok_codes:
        raise SystemExit(f"failed (exit {code}): {' '.join(cmd)}; its output: {log}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20, tree, code


class TreeMemory(threading.Thread):
    """Peak of the summed PSS (Linux smaps_rollup) of a process and all its descendants."""

    def __init__(self, pid: int, every: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self._done = pid, every, 0, threading.Event()
        self.start()

    def run(self):
        while not self._done.is_set():
            self.peak = max(self.peak, sum(_pss(p) for p in _descendants(self.pid)))
            self._done.wait(self.every)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak / 2**30


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree_bytes(folder: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def io_floor(raw: Path, sdtm: Path, scratch: Path) -> dict[str, float]:
    """Seconds for the I/O any implementation must do: read the raw CSV (pyarrow, all cores),
    write the SDTM parquet from memory, write the XPT bytes from memory."""
    scratch.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    raw_records = sum(pacsv.read_csv(path).num_rows for path in sorted(raw.glob("*.csv")))
    csv_read = time.perf_counter() - t0
    tables = {p.name: pq.read_table(p) for p in sorted(sdtm.glob("*.parquet"))}
    t0 = time.perf_counter()
    for name, table in tables.items():
        pq.write_table(table, scratch / name)
    parquet_write = time.perf_counter() - t0
    del tables
    blobs = {p.name: p.read_bytes() for p in sorted(sdtm.glob("*.xpt"))}
    t0 = time.perf_counter()
    for name, blob in blobs.items():
        with open(scratch / name, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
    xpt_write = time.perf_counter() - t0
    shutil.rmtree(scratch, ignore_errors=True)
    return {"raw_records": raw_records, "csv_read": csv_read, "parquet_write": parquet_write, "xpt_write": xpt_write,
            "total": csv_read + parquet_write + xpt_write}


def sdtm_folder(out: Path, study: str) -> Path:
    builds = [p for p in (out / study).iterdir() if (p / "sdtm" / "manifest.json").is_file()]
    if len(builds) != 1:
        raise SystemExit(f"expected one SDTM build under {out / study}, found {len(builds)}")
    return builds[0] / "sdtm"


def one_size(study: str, n: int, seed: int, work: Path, raw: Path | None) -> tuple[list[Step], dict]:
    steps = []
    if raw is None:
        raw = work / f"raw{n}"
        wall, cpu, rss, tree, _ = child([str(CLI), "simulate", "--study", study, "--subjects", str(n),
                                   "--seed", str(seed), "--format", "csv", "--out", str(raw)],
                                  work / f"simulate{n}.log")
        steps.append(Step("simulate (set-up)", n, wall, cpu, rss, tree, bytes_out=tree_bytes(raw)))
        print(f"  n={n}: simulated the export in {wall:.0f} s", flush=True)
    out = work / f"out{n}"
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, rss, tree, _ = child([str(CLI), "sdtm", "--study", study, "--transfer", str(raw),
                               "--out", str(out)], work / f"sdtm{n}.log")
    folder = sdtm_folder(out, study)
    manifest = json.loads((folder / "manifest.json").read_text())
    records = sum(d["rows"] for d in manifest["datasets"].values())
    steps.append(Step("sdtm", n, wall, cpu, rss, tree, records, tree_bytes(raw, "*.csv"), tree_bytes(folder)))
    print(f"  n={n}: sdtm {wall:.1f} s", flush=True)
    # exit 1 = ERROR findings: still a full validation, so it is timed all the same
    wall, cpu, rss, tree, code = child([str(CLI), "validate", "--study", study, "--sdtm", str(folder),
                                  "--out", str(out)], work / f"validate{n}.log", ok_codes=(0, 1))
    reports = folder.parent / "reports"
    steps.append(Step("validate" + (" (ERRORs found)" if code else ""), n, wall, cpu, rss, tree, records,
                      tree_bytes(folder), tree_bytes(reports, "conformance.*")))
    print(f"  n={n}: validate {wall:.1f} s", flush=True)
    return steps, io_floor(raw, folder, work / f"floor{n}")


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(time) on log(subjects): 1 is linear."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def report(steps: list[Step], floors: dict[int, dict], markdown: bool) -> None:
    gib = lambda b: b / 2**30
    print()
    if markdown:
        print("| N | step | wall | CPU | peak RSS | peak tree PSS | records | in | out |")
        print("|---|---|---|---|---|---|---|---|---|")
    for s in steps:
        if markdown:
            print(f"| {s.subjects:,} | {s.name} | {s.wall:.1f} s | {s.cpu:.1f} s | {s.rss:.2f} GiB | "
                  f"{s.tree:.2f} GiB | {s.records:,} | {gib(s.bytes_in):.2f} GiB | {gib(s.bytes_out):.2f} GiB |")
        else:
            print(f"{s.subjects:>7,} {s.name:<26} wall {s.wall:7.1f} s  CPU {s.cpu:7.1f} s  "
                  f"peak RSS {s.rss:5.2f} GiB  tree PSS {s.tree:5.2f} GiB  records {s.records:>10,}  in {gib(s.bytes_in):5.2f} GiB  "
                  f"out {gib(s.bytes_out):5.2f} GiB")
    print()
    totals = {}
    for n, floor in floors.items():
        pipe = [s for s in steps if s.subjects == n and not s.name.startswith("simulate")]
        wall = sum(s.wall for s in pipe)
        totals[n] = wall
        peak = max(s.rss for s in pipe)
        tree = max(s.tree for s in pipe)
        print(f"n={n:,} ({floor['raw_records']:,} raw records): sdtm + validate {wall:.1f} s wall, peak RSS "
              f"{peak:.2f} GiB, peak tree PSS {tree:.2f} GiB ({tree * 2**30 / 1e9:.2f} GB); I/O floor "
              f"{floor['total']:.1f} s (CSV read {floor['csv_read']:.1f}, parquet write "
              f"{floor['parquet_write']:.1f}, XPT bytes {floor['xpt_write']:.1f}); "
              f"ratio {wall / floor['total']:.1f}x the floor")
    if len(totals) >= 2:
        ns = sorted(totals)
        print(f"scaling: time x{totals[ns[-1]] / totals[ns[0]]:.1f} for subjects "
              f"x{ns[-1] / ns[0]:.0f}; exponent {slope([(n, totals[n]) for n in ns]):.2f} "
              f"(sdtm {slope([(s.subjects, s.wall) for s in steps if s.name == 'sdtm']):.2f}, "
              f"validate {slope([(s.subjects, s.wall) for s in steps if s.name.startswith('validate')]):.2f})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--subjects", default="1000", help="comma-separated sizes, e.g. 1000,3000,10000")
    ap.add_argument("--study", default="RS001")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--raw", type=Path, default=None,
                    help="an existing CSV export to use instead of simulating (one size only)")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.subjects.split(",")]
    if args.raw is not None and len(sizes) != 1:
        ap.error("--raw goes with one --subjects size (the export's)")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="clinpipe-bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    steps, floors = [], {}
    try:
        for n in sizes:
            got, floor = one_size(args.study, n, args.seed, work, args.raw)
            steps += got
            floors[n] = floor
        report(steps, floors, args.markdown)
        if args.json:
            args.json.write_text(json.dumps({"steps": [asdict(s) for s in steps],
                                             "floors": {str(k): v for k, v in floors.items()}}, indent=1))
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            print(f"working folder kept: {work}")


if __name__ == "__main__":
    main()
