"""`clinpipe`: the command line. Every command has --help; errors print one line and exit 2."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from clinpipe.errors import ClinpipeError


class _Group(click.Group):
    """Turn ClinpipeError into a one-line message and a non-zero exit, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ClinpipeError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            sys.exit(2)


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
def simulate(study, n_subjects, seed, fmt, outdir, faults):
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
    sim = simulate_study(study, n_subjects, seed)
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
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of CSV files.")
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
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=None,
              help="Output root (default: out/ or $CLINPIPE_OUT).")
@click.option("--study", "studies", multiple=True, help="Only this study (repeatable).")
def demo(out_root, studies):
    """Run both studies on the bundled sample exports, as far as the built layers go.

    Each study's faulty copy (data/raw-faults/) is built too, into <out>/with-faults/, so its
    reports show what rejected records, reader findings and data queries look like."""
    from clinpipe.config import available_studies
    from clinpipe.paths import faulty_data_dir, latest_transfer
    from clinpipe.paths import out_root as default_root

    root = out_root or default_root()
    failed = []
    for study in studies or available_studies():
        click.echo(f"{study}: raw -> reports, SDTM, conformance, ADaM, TLF")
        try:
            _demo_transfer(study, latest_transfer(study), root)
            if (faulty_data_dir() / study).is_dir():
                faulty = latest_transfer(study, faulty_data_dir())
                click.echo(f"{study}: the faulty copy {faulty} -> {root / 'with-faults'}")
                _demo_transfer(study, faulty, root / "with-faults", faulty=True)
        except ClinpipeError as exc:
            click.secho(f"  {study}: FAILED: {exc.message}", fg="red", err=True)
            failed.append(study)
    if failed:
        click.secho(f"demo failed for {', '.join(failed)}; earlier outputs left as they were", fg="red", err=True)
        sys.exit(1)
    click.echo(f"demo done: outputs under {root}")


def _demo_transfer(study: str, transfer: Path, root: Path, faulty: bool = False) -> None:
    """raw summary -> SDTM -> conformance for one transfer folder (all its formats)."""
    from clinpipe.paths import transfer_formats
    from clinpipe.raw_summary import summarise_study
    from sdtm.run import run_sdtm
    from sdtm.validate.run import validate_run

    report = summarise_study(study, transfer, root, progress=click.echo)
    click.echo(f"  {study}: wrote {report}")
    run = run_sdtm(study, next(iter(transfer_formats(transfer).values())), root, progress=click.echo)
    result, page = validate_run(run, root)
    if faulty:
        click.echo(f"  {study}: faulty copy: {len(run.raw.findings)} reader findings, "
                   f"{len(run.build.rejections)} rejected records, {len(run.build.issues)} mapping issues")
    # The faulty copy is expected to carry ERRORs; only the clean sample must be free of them.
    click.echo(f"  {study}: conformance: {len(result.open('ERROR'))} open ERROR, "
               f"{len(result.open('WARNING'))} WARNING findings -> {page}")
    if not faulty:
        from adam.run import run_adam
        from tlf.run import run_tlf
        run_adam(study, run.folder, root, progress=click.echo)
        tlf = run_tlf(study, out_root=root, progress=click.echo)
        click.echo(f"  {study}: TLF index -> {tlf.folder / 'index.html'}")


@main.command()
@click.option("--study", required=True, help="Study id (RS001, GLOCART).")
@click.option("--transfer", type=click.Path(path_type=Path), default=None,
              help="Transfer folder (default: the newest under data/raw/<STUDY>/, CSV form).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=None,
              help="Output root (default: out/ or $CLINPIPE_OUT).")
def sdtm(study, transfer, out_root):
    """Map one transfer to SDTM: out/<STUDY>/sdtm/*.xpt|parquet and reports/sdtm_reconciliation.*"""
    from clinpipe.paths import latest_transfer, transfer_formats
    from sdtm.run import run_sdtm

    folder = transfer or next(iter(transfer_formats(latest_transfer(study)).values()))
    run = run_sdtm(study, folder, out_root, progress=click.echo)
    for name, info in run.written.items():
        click.echo(f"  {name:8} {info['rows']:>7,} records  {info['xpt'].name}")


@main.command()
@click.option("--study", required=True, help="Study id (RS001, GLOCART): its configuration and ADaM specs.")
@click.option("--sdtm", "sdtm_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of SDTM .xpt/.parquet (default: out/<STUDY>/sdtm); any SDTMIG-conformant SDTM works.")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=None,
              help="Output root for <STUDY>/adam (default: out/ or $CLINPIPE_OUT).")
@click.option("--cutoff", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Data cut-off YYYY-MM-DD (default: TS DCUTDTC of the SDTM, else study.yaml).")
def adam(study, sdtm_dir, out_root, cutoff):
    """Build ADaM from an SDTM folder: out/<STUDY>/adam/*.xpt|parquet and manifest.json."""
    from adam.run import run_adam
    from clinpipe.paths import study_out

    run = run_adam(study, sdtm_dir or study_out(study, "sdtm", out_root), out_root,
                   cutoff.date() if cutoff else None, progress=click.echo)
    for name, info in run.written.items():
        click.echo(f"  {name:8} {info['rows']:>7,} records  {info['xpt'].name}")


@main.command()
@click.option("--study", required=True, help="Study id (RS001, GLOCART): its TLF catalogue.")
@click.option("--adam", "adam_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of ADaM parquet + manifest.json (default: out/<STUDY>/adam).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=None,
              help="Output root for <STUDY>/tlf (default: out/ or $CLINPIPE_OUT).")
@click.option("--output", "only", multiple=True, help="Only this output id (repeatable).")
def tlf(study, adam_dir, out_root, only):
    """Build the TLF outputs of mappings/<STUDY>/tlf/: RTF, PNG, ARD (XPT + parquet), lineage
    and index in out/<STUDY>/tlf/."""
    from tlf.run import run_tlf

    run = run_tlf(study, adam_dir, out_root, list(only) or None, progress=click.echo)
    click.echo(f"  index: {run.folder / 'index.html'} ({run.lineage_rows:,} lineage rows)")


@main.command()
@click.option("--study", required=True, help="Study id (RS001, GLOCART).")
@click.option("--output", "outid", required=True, help="Output id, e.g. t-14-2-5.")
@click.option("--row", "ardrow", required=True, type=int,
              help="ARD row number (1-based, as on the output's trace page).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=None,
              help="Output root (default: out/ or $CLINPIPE_OUT).")
@click.option("--raw/--no-raw", default=True, show_default=True,
              help="Also print the raw EDC records (read from the transfer the SDTM came from).")
def trace(study, outid, ardrow, out_root, raw):
    """Which subjects and records make up one number: ARD row -> ADaM -> SDTM -> raw form."""
    from tlf.trace import trace_number

    click.echo(trace_number(study, outid, ardrow, out_root, with_raw=raw))


@main.command()
@click.option("--study", required=True, help="Study id (RS001, GLOCART): its trial design and waivers.")
@click.option("--sdtm", "sdtm_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of SDTM .xpt/.parquet to validate (default: out/<STUDY>/sdtm); any SDTM works.")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=None,
              help="Output root for reports/conformance.* (default: out/ or $CLINPIPE_OUT).")
def validate(study, sdtm_dir, out_root):
    """Validate SDTM against SDTMIG 3.4 / CT metadata and cross-dataset rules; exit 1 on ERROR."""
    from clinpipe.config import load_study
    from clinpipe.paths import study_out
    from sdtm.validate.run import load_sdtm_folder, load_waivers, write_conformance
    from sdtm.validate.run import validate as run_validation

    folder = sdtm_dir or study_out(study, "sdtm", out_root)
    result = run_validation(load_sdtm_folder(folder), load_study(study), load_waivers(study), study=study)
    page = write_conformance(result, out_root, None, {"SDTM": str(folder)})
    click.echo(result.summary().to_string(index=False) if len(result.findings) else "no findings")
    n_err = len(result.open("ERROR"))
    click.echo(f"{study}: {n_err} open ERROR finding(s); report: {page}")
    if n_err:
        sys.exit(1)


@main.command()
def studies():
    """List configured studies and their sample transfers."""
    from clinpipe.config import available_studies, load_study
    from clinpipe.paths import raw_data_dir

    for study in available_studies():
        cfg = load_study(study)
        transfers = sorted(p.name for p in (raw_data_dir() / study).glob("*") if p.is_dir())
        click.echo(f"{study}: {cfg.study.title}")
        click.echo(f"  transfers: {', '.join(transfers) or 'none'}")


if __name__ == "__main__":
    main()
