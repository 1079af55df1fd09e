"""`clinpipe`: the command line. Every command has --help; errors print one line and exit 2."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from clinpipe.errors import ClinpipeError
from clinpipe.runlog import logged


class _Group(click.Group):
    """Turn ClinpipeError into a one-line message and a non-zero exit, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ClinpipeError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            sys.exit(2)


def _study(ctx, param, value):
    """A study id from the configured list (mappings/<STUDY>/study.yaml), never a path."""
    from clinpipe.config import available_studies

    if value is None:
        return value
    known = available_studies()
    if value not in known:
        raise click.BadParameter(f"unknown study {value!r}; configured studies: {', '.join(known)}")
    return value


def _transfer_folder(study: str, value: str | None) -> Path:
    """--transfer as a folder, or as a transfer name (its date) under data/raw/<STUDY>/."""
    from clinpipe.errors import ExportError
    from clinpipe.paths import latest_transfer, raw_data_dir, raw_transfers

    if not value:
        return latest_transfer(study)
    if Path(value).is_dir():
        return Path(value)
    named = raw_data_dir() / study / value
    if named.is_dir():
        return named
    have = [p.name for p in raw_transfers(study)]
    raise ExportError(f"no transfer {value!r}", file=raw_data_dir() / study,
                      hint=f"give a transfer folder or one of: {', '.join(have) or 'none'}")


STUDY = click.option("--study", required=True, callback=_study, help="Study id (a folder under mappings/).")
ENCODING = click.option(
    "--encoding", default="utf-8", show_default=True,
    help="Encoding of the CSV files that are not valid UTF-8, e.g. cp1252 (decided per file: "
         "a valid UTF-8 file is read as UTF-8 whatever this says).")
OUT = click.option("--out", "out_root", type=click.Path(path_type=Path), default=None,
                   help="Output root (default: out/ or $CLINPIPE_OUT).")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clinpipe")
def main():
    """Raw EDC exports -> SDTM -> ADaM -> tables for the RS001 and GLOCART trials."""


@main.command()
@click.option("--study", required=True, type=click.Choice(["RS001", "GLOCART"]), help="Study to simulate.")
@click.option("--subjects", "n_subjects", default=40, show_default=True, type=int,
              help="Subjects screened (signed consent), screen failures included.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed; same seed, same export.")
@click.option("--format", "fmt", default="csv", show_default=True, type=click.Choice(["csv", "odm"]),
              help="CSV per form, or one CDISC ODM 1.3.2 XML file.")
@click.option("--out", "outdir", required=True,
              help="Transfer folder to create (must be new or empty); '{transfer_date}' in it is "
                   "replaced by the simulated transfer date, e.g. data/raw/RS001/{transfer_date}/csv.")
@click.option("--faults", default="", help="Comma-separated fault kinds to inject, or 'all'. "
              "Kinds: duplicate_record, inactivated_record, impossible_date, unknown_code, "
              "missing_required, out_of_range, orphan_subject, non_ascii, long_text, "
              "truncated_file, wrong_encoding. Each is listed in faults.json.")
@click.option("--transfer-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="An earlier transfer of the same study (same seed): the same subjects and histories, "
                   "cut at this date, YYYY-MM-DD (default: the study's own transfer date).")
def simulate(study, n_subjects, seed, fmt, outdir, faults, transfer_date):
    """Generate a synthetic EDC transfer for STUDY (deterministic for a seed)."""
    from simulate import faults as fault_mod
    from simulate.run import deliver, ensure_new_folder, simulate_study

    try:
        kinds = fault_mod.parse_kinds(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    if "{transfer_date}" not in outdir:
        ensure_new_folder(Path(outdir))
    t0 = time.perf_counter()
    click.echo(f"simulating {study}: {n_subjects:,} subjects, seed {seed}")
    sim = simulate_study(study, n_subjects, seed, transfer_date=transfer_date.date() if transfer_date else None)
    click.echo(f"  {sim.n_records():,} records in {len(sim.records)} forms, "
               f"transfer date {sim.transfer_date} ({time.perf_counter() - t0:.1f} s)")
    outdir = Path(outdir.replace("{transfer_date}", sim.transfer_date.isoformat()))
    done = deliver(sim, fmt, outdir, kinds, progress=lambda m: click.echo(f"  {m}"))
    size = sum(p.stat().st_size for p in done.outdir.iterdir())
    click.echo(f"wrote {len(done.files)} file(s), {size / 1e6:.1f} MB, to {done.outdir} "
               f"in {time.perf_counter() - t0:.1f} s")
    if kinds:
        click.echo(f"injected {len(done.faults)} fault(s); listed in {done.outdir / fault_mod.MANIFEST_NAME}")


@main.command()
@click.option("--study", default=None, help="Study id (default: read from the export).")
@click.option("--transfer", type=click.Path(path_type=Path), default=None,
              help="Transfer folder (default: the newest under data/raw/<STUDY>/).")
@click.option("--format", "fmt", default="auto", show_default=True,
              type=click.Choice(["auto", "csv", "odm", "sas"]), help="Export format.")
@ENCODING
def read(study, transfer, fmt, encoding):
    """Read one EDC transfer and print what it holds (records, subjects, findings)."""
    from clinpipe.paths import latest_transfer, transfer_formats
    from edc.read import read_transfer

    if transfer is None:
        if not study:
            raise click.UsageError("give --study or --transfer")
        transfer = latest_transfer(study)
        transfer = next(iter(transfer_formats(transfer).values()))
    raw = read_transfer(transfer, study=study, format=fmt, encoding=encoding)
    click.echo(f"{raw.study} transfer {raw.transfer_date} ({raw.format.upper()}): {transfer}")
    click.echo(raw.summary().to_string(index=False))
    if raw.findings:
        click.echo(f"\n{len(raw.findings)} finding(s):")
        for f in raw.findings[:50]:
            click.echo(f"  {f.kind:18} {f.file} record {f.record} {f.field}: {f.message}")


@main.command()
@OUT
@click.option("--study", "studies", multiple=True, callback=lambda c, p, v: [_study(c, p, s) for s in v],
              help="Only this study (repeatable).")
def demo(out_root, studies):
    """Run every study on the bundled sample exports through Dagster, raw -> submission.

    Each sample transfer (data/raw/<STUDY>/<date>/) is one partition of the study's
    `<STUDY>_submission_build` job, built into <out>/<STUDY>/<date>/; with DAGSTER_HOME set the
    runs are kept in that instance and `clinpipe ui` shows them. Each study's faulty copy
    (data/raw-faults/) is mapped too, into <out>/with-faults/, so its reports show what rejected
    records, reader findings and data queries look like."""
    from clinpipe.config import available_studies
    from clinpipe.paths import faulty_data_dir, latest_transfer
    from clinpipe.paths import out_root as default_root
    from pipelines.execute import failures, instance, materialise
    from pipelines.raw import transfer_folders

    root = out_root or default_root()
    inst = instance()
    failed = []
    for study in studies or available_studies():
        try:
            names = transfer_folders(study) or [latest_transfer(study).name]
            for name in names:
                click.echo(f"{study} {name}: raw -> SDTM -> ADaM -> TLF -> submission (Dagster job "
                           f"{study}_submission_build)")
                result = materialise(study, name, out_root=root, inst=inst)
                if not result.success:
                    raise ClinpipeError("; ".join(failures(result)) or "the run failed")
                click.echo(f"  {study} {name}: done -> {root / study / name}")
            if (faulty_data_dir() / study).is_dir():
                faulty = latest_transfer(study, faulty_data_dir())
                click.echo(f"{study}: the faulty copy {faulty} -> {root / 'with-faults'}")
                _demo_faulty(study, faulty, root / "with-faults")
        except ClinpipeError as exc:
            click.secho(f"  {study}: FAILED: {exc.message}", fg="red", err=True)
            failed.append(study)
    if failed:
        click.secho(f"demo failed for {', '.join(failed)}; earlier outputs left as they were", fg="red", err=True)
        sys.exit(1)
    click.echo(f"demo done: outputs under {root} (newest build of each study: {root}/<STUDY>/latest)")


def _demo_faulty(study: str, transfer: Path, root: Path) -> None:
    """raw summary -> SDTM -> conformance for the faulty copy (ERRORs expected: no ADaM)."""
    from clinpipe.raw_summary import summarise_study
    from sdtm.run import write_sdtm
    from sdtm.validate.run import validate_run

    summary = summarise_study(study, transfer, root, progress=click.echo)
    run = write_sdtm(summary.transfer, root, progress=click.echo)
    result, page = validate_run(run, root)
    click.echo(f"  {study}: faulty copy: {len(run.raw.findings)} reader findings, "
               f"{len(run.build.rejections)} rejected records, {len(run.build.issues)} mapping issues")
    click.echo(f"  {study}: conformance: {len(result.open('ERROR'))} open ERROR, "
               f"{len(result.open('WARNING'))} WARNING findings -> {page}")


@main.command()
@STUDY
@click.option("--transfer", default=None,
              help="Transfer folder, or its name (date) under data/raw/<STUDY>/ (default: the newest).")
@OUT
@click.option("--package/--no-package", default=True, show_default=True,
              help="Also build the eCTD submission package (Define-XML 2.1).")
@ENCODING
@logged
def run(study, transfer, out_root, package, encoding):
    """The whole chain for one transfer, in process: raw -> SDTM -> ADaM -> TLF -> submission
    package -> change report, into <out>/<STUDY>/<TRANSFER>/.

    Exit 0: built; 1: stopped by open ERROR findings (SDTM or ADaM conformance; the report path is
    printed); 2: a usage, input or configuration error."""
    from clinpipe.chain import run_study

    t0 = time.perf_counter()
    result = run_study(study, _transfer_folder(study, transfer), out_root, progress=click.echo,
                       package=package, encoding=encoding)
    if not result.complete:
        click.secho(f"{study} {result.transfer}: stopped at {result.stopped_at}", fg="red", err=True)
        sys.exit(1)
    click.echo(f"{study} {result.transfer}: built in {time.perf_counter() - t0:.0f} s -> {result.base}")


@main.command()
@STUDY
@click.option("--transfer", default=None, help="Transfer (build folder name; default: the newest built).")
@OUT
@click.option("--verify", "verify_only", is_flag=True, help="Only check an existing package against its manifest.")
@logged
def package(study, transfer, out_root, verify_only):
    """Build (or verify) the eCTD module 5 submission package of one build:
    <out>/<STUDY>/<TRANSFER>/submission/ with SDTM and ADaM XPT, Define-XML 2.1, TLF and ARD,
    and a manifest with the SHA-256 of every file. Exit 1 when the package does not verify."""
    from clinpipe.paths import build_dir
    from submission.package import build_package, verify_package

    base = build_dir(study, out_root, transfer, layer=None if transfer else "tlf")
    if not verify_only:
        build_package(study, base, progress=click.echo)
    problems = verify_package(base / "submission")
    for line in problems[:20]:
        click.secho(f"  {line}", fg="red", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{study} {base.name}: package verifies against its manifest: {base / 'submission'}")


@main.command()
@STUDY
@click.option("--old", default=None, help="Earlier transfer (default: the one built before --new).")
@click.option("--new", default=None, help="Later transfer (default: the newest built).")
@OUT
@logged
def changes(study, old, new, out_root):
    """What changed between two transfers' builds: records added, removed and changed per SDTM
    and ADaM dataset (by key), and every TLF number that moved; written as html and xlsx to the
    newer build's reports/changes.*"""
    from clinpipe.chain import report_changes
    from clinpipe.paths import build_dir

    new = new or build_dir(study, out_root, layer="tlf").name
    meta = report_changes(study, new, out_root, progress=click.echo, previous=old)
    click.echo(f"{study}: {new} compared with {meta['compared_with']}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=3000, show_default=True, type=int, help="Port of the web UI.")
def ui(host, port):
    """Start the Dagster web UI (and daemon: sensors, schedules, run queue) for every study.

    DAGSTER_HOME defaults to the repository (dagster.yaml there; runs kept in .dagster_home/)."""
    import os

    from clinpipe.paths import REPO_ROOT

    env = {**os.environ, "DAGSTER_HOME": os.environ.get("DAGSTER_HOME", str(REPO_ROOT))}
    exe = str(Path(sys.executable).with_name("dagster"))
    click.echo(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={env['DAGSTER_HOME']}); Ctrl-C stops it")
    os.chdir(REPO_ROOT)   # dagster.yaml's storage paths are relative to where Dagster starts
    os.execve(exe, [exe, "dev", "-m", "pipelines.definitions", "-h", host, "-p", str(port)], env)


@main.command()
@STUDY
@click.option("--transfer", default=None,
              help="Transfer folder, or its name (date) under data/raw/<STUDY>/ (default: the newest; CSV form).")
@OUT
@ENCODING
@click.option("--validate", "then_validate", is_flag=True,
              help="Also validate the SDTM written and list the data queries for sites "
                   "(reports/conformance.*, conformance_queries.*); exit 1 on open ERROR findings.")
@logged
def sdtm(study, transfer, out_root, encoding, then_validate):
    """Map one transfer to SDTM: <out>/<STUDY>/<TRANSFER>/sdtm/*.xpt|parquet and
    reports/sdtm_reconciliation.*

    Exit 0: written; 1 (with --validate): written, with open ERROR findings (the report path is
    printed); 2: a usage, input or configuration error (nothing written)."""
    from clinpipe.paths import transfer_formats
    from sdtm.run import run_sdtm

    folder = next(iter(transfer_formats(_transfer_folder(study, transfer)).values()))
    run = run_sdtm(study, folder, out_root, progress=click.echo, encoding=encoding)
    for name, info in run.written.items():
        click.echo(f"  {name:8} {info['rows']:>7,} records  {info['xpt'].name}")
    reports = run.folder.parent / "reports"
    _warn_counts(run, reports / "sdtm_reconciliation.xlsx")
    click.echo(f"  reports: {reports / 'sdtm_reconciliation.html'}")
    if then_validate:
        from sdtm.validate.run import validate_run

        click.echo(f"  {study}: validating {run.folder}")
        result, page = validate_run(run, out_root)
        n_err = len(result.open("ERROR"))
        click.echo(f"  {study}: {n_err} open ERROR, {len(result.open('WARNING'))} WARNING finding(s); "
                   f"report: {page}; data queries: {reports / 'conformance_queries.csv'}")
        if n_err:
            sys.exit(1)


def _warn_counts(run, report: Path) -> None:
    """What a data manager must look at, as WARNING lines (console and run log)."""
    counts = [(len(run.raw.findings), "raw finding(s) from the edit checks", "raw findings"),
              (len(run.build.rejections), "raw record(s) rejected", "rejections"),
              (len(run.build.issues), "mapping issue(s)", "mapping issues")]
    for n, what, sheet in counts:
        if n:
            click.echo(f"WARNING: {n:,} {what}: {report.name}, sheet '{sheet}'")


@main.command()
@STUDY
@click.option("--sdtm", "sdtm_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of SDTM .xpt/.parquet (default: the newest build's sdtm/); any SDTMIG-conformant "
                   "SDTM works.")
@OUT
@click.option("--cutoff", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Data cut-off YYYY-MM-DD (default: TS DCUTDTC of the SDTM, else study.yaml).")
@logged
def adam(study, sdtm_dir, out_root, cutoff):
    """Build ADaM from an SDTM folder: <out>/<STUDY>/<TRANSFER>/adam/*.xpt|parquet and
    manifest.json (TRANSFER: the SDTM's transfer, else the data cut-off)."""
    from adam.run import run_adam
    from clinpipe.paths import study_out

    run = run_adam(study, sdtm_dir or study_out(study, "sdtm", out_root), out_root,
                   cutoff.date() if cutoff else None, progress=click.echo)
    for name, info in run.written.items():
        click.echo(f"  {name:8} {info['rows']:>7,} records  {info['xpt'].name}")


@main.command()
@STUDY
@click.option("--adam", "adam_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of ADaM parquet + manifest.json (default: the newest build's adam/).")
@OUT
@click.option("--output", "only", multiple=True, help="Only this output id (repeatable).")
@logged
def tlf(study, adam_dir, out_root, only):
    """Build the TLF outputs of mappings/<STUDY>/tlf/: RTF, PNG, ARD (XPT + parquet), lineage
    and index in <out>/<STUDY>/<TRANSFER>/tlf/."""
    from tlf.run import run_tlf

    run = run_tlf(study, adam_dir, out_root, list(only) or None, progress=click.echo)
    click.echo(f"  index: {run.folder / 'index.html'} ({run.lineage_rows:,} lineage rows)")


@main.command()
@STUDY
@click.option("--output", "outid", required=True, help="Output id, e.g. t-14-2-5.")
@click.option("--row", "ardrow", required=True, type=int,
              help="ARD row number (1-based, as on the output's trace page).")
@click.option("--transfer", default=None, help="Which build (transfer date; default: the newest built).")
@OUT
@click.option("--raw/--no-raw", default=True, show_default=True,
              help="Also print the raw EDC records (read from the transfer the SDTM came from).")
def trace(study, outid, ardrow, transfer, out_root, raw):
    """Which subjects and records make up one number: ARD row -> ADaM -> SDTM -> raw form."""
    from tlf.trace import trace_number

    click.echo(trace_number(study, outid, ardrow, out_root, with_raw=raw, transfer=transfer))


@main.command()
@STUDY
@click.option("--sdtm", "sdtm_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of SDTM .xpt/.parquet to validate (default: the newest build's sdtm/); any SDTM works.")
@OUT
@logged
def validate(study, sdtm_dir, out_root):
    """Validate SDTM against SDTMIG 3.4 / CT metadata and cross-dataset rules; exit 1 on ERROR.
    The report goes to reports/conformance.* of the build the folder belongs to."""
    from clinpipe.config import load_study
    from clinpipe.paths import study_out
    from sdtm.validate.run import load_sdtm_folder, load_waivers, report_transfer, write_conformance
    from sdtm.validate.run import validate as run_validation

    folder = sdtm_dir or study_out(study, "sdtm", out_root)
    result = run_validation(load_sdtm_folder(folder), load_study(study), load_waivers(study), study=study)
    # reports go to the build the folder belongs to (an outside folder: <out>/<STUDY>/external/)
    page = write_conformance(result, out_root, None, {"SDTM": str(folder)},
                             transfer=report_transfer(study, Path(folder)))
    click.echo(result.summary().to_string(index=False) if len(result.findings) else "no findings")
    n_err = len(result.open("ERROR"))
    click.echo(f"{study}: {n_err} open ERROR finding(s); report: {page}")
    if n_err:
        sys.exit(1)


@main.command()
def studies():
    """List configured studies and their sample transfers."""
    from clinpipe.config import available_studies, load_study
    from clinpipe.paths import raw_transfers

    for study in available_studies():
        cfg = load_study(study)
        transfers = [p.name for p in raw_transfers(study)]
        click.echo(f"{study}: {cfg.study.title}")
        click.echo(f"  transfers: {', '.join(transfers) or 'none'}")


if __name__ == "__main__":
    main()
