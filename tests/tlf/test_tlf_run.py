"""The TLF layer as a whole on both samples: ARD contract, reproducible bytes, lineage and
`clinpipe trace` back to the raw record, and RTFs that LibreOffice opens and renders."""
from __future__ import annotations

import hashlib
import shutil
import subprocess

import pandas as pd
import pyreadstat
import pytest
from click.testing import CliRunner

from clinpipe.paths import study_out
from tlf.ard import ARD_COLUMNS, STATS
from tlf.catalog import load_catalog

STUDIES = ["RS001", "GLOCART"]


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("study", STUDIES)
def test_every_catalogued_output_is_written_and_indexed(sample_tlf, study):
    s = sample_tlf[study]
    cat = load_catalog(study)
    index = pd.read_csv(s.tlf / "index.csv")
    assert list(index["OUTID"]) == [o.id for o in cat.outputs]
    for out in cat.outputs:
        assert (s.tlf / f"{out.id}.rtf").stat().st_size > 1000
        assert (s.tlf / "trace" / f"{out.id}.html").is_file()
        if out.type == "figure":
            assert list((s.tlf / "png").glob(f"{out.id}*.png"))
    assert "trace/" in (s.tlf / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("study", STUDIES)
def test_ard_xpt_follows_the_contract(sample_tlf, study):
    s = sample_tlf[study]
    for out in load_catalog(study).outputs:
        df, meta = pyreadstat.read_xport(str(s.tlf / "ard" / f"{out.id}.xpt"))
        assert list(df.columns) == ARD_COLUMNS, out.id
        assert meta.table_name == "ARD"
        assert set(df["STAT"]) <= set(STATS), out.id
        assert (df["OUTID"] == out.id).all()
        parquet = s.ard(out.id)
        assert len(parquet) == len(df) > 0, out.id
        # the unrounded number and its printed text agree where both exist
        assert pd.api.types.is_float_dtype(parquet["STATVAL"])
        ne = parquet["STATC"] == "NE"
        assert parquet.loc[ne, "STATVAL"].isna().all(), out.id


@pytest.mark.parametrize("study", STUDIES)
def test_every_counted_number_has_lineage(sample_tlf, study):
    """Every count (n, events, N) above 0 traces to at least one record."""
    s = sample_tlf[study]
    lin = s.lineage()
    for out in load_catalog(study).outputs:
        ard = s.ard(out.id)
        counted = ard.index[(ard["STAT"].isin(["n", "events", "N"])) & (ard["STATVAL"] > 0)] + 1
        traced = set(lin.loc[lin["OUTID"] == out.id, "ARDROW"])
        missing = sorted(set(counted) - traced)
        assert not missing, f"{out.id}: ARD rows {missing[:5]} count subjects but trace to none"


def test_rerun_gives_identical_bytes(sample_tlf, tmp_path):
    """Same ADaM, same code: every RTF, PNG, XPT, parquet and html byte for byte."""
    from tlf.run import run_tlf

    s = sample_tlf["RS001"]
    run_tlf("RS001", adam_dir=s.base / "adam", out_root=tmp_path,
            progress=lambda m: None)
    first, second = _digests(s.tlf), _digests(study_out("RS001", "tlf", tmp_path))
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_trace_of_a_km_event_count_reaches_the_raw_records(sample_tlf):
    """The events of a KM table are exactly ADTTE's CNSR = 0 records of the cell, and each
    comes with its SDTM record and raw form record."""
    s = sample_tlf["RS001"]
    lin = s.lineage()
    adtte, adsl = s.adam("ADTTE"), s.adam("ADSL")
    # an output analysing ADTTE as built (no extra subset such as `responders`)
    km_outputs = [o for o in load_catalog("RS001").outputs
                  if o.analysis == "tte.km_summary" and set(o.params) <= {"paramcd", "labels",
                                                                          "landmarks"}]
    assert km_outputs
    out = km_outputs[0]
    ard = s.ard(out.id)
    rows = ard[(ard["STAT"] == "events") & (ard["GRP1LVL"] == "All subjects")]
    assert len(rows)
    for k, row in rows.iterrows():
        pop = adsl.loc[adsl[out.population] == "Y", "USUBJID"]
        for var, val in out.where.items():
            pop = pop[adsl.loc[pop.index, var] == val]
        expected = adtte[(adtte.PARAMCD == row.PARAMCD) & (adtte.CNSR == 0) & adtte.USUBJID.isin(pop)]
        assert row.STATVAL == len(expected)
        got = lin[(lin.OUTID == out.id) & (lin.ARDROW == k + 1)]
        assert sorted(got["USUBJID"]) == sorted(expected["USUBJID"])
        assert (got["ADDSN"] == "ADTTE").all()
        assert (got["SRCDOM"] != "").all()
        assert (got["FORM"] != "").all() and (got["RECORDID"] != "").all()


def test_clinpipe_trace_prints_subjects_and_raw_records(sample_tlf):
    from clinpipe.cli import main

    s = sample_tlf["RS001"]
    lin = s.lineage()
    ard_ae = [o for o in load_catalog("RS001").outputs if o.analysis.startswith("ae.")]
    targets = []
    km = next(o for o in load_catalog("RS001").outputs if o.analysis == "tte.km_summary")
    ard = s.ard(km.id)
    targets.append((km.id, int(ard.index[(ard.STAT == "events") & (ard.STATVAL > 0)][0]) + 1))
    if ard_ae:
        a = s.ard(ard_ae[0].id)
        targets.append((ard_ae[0].id, int(a.index[(a.STAT == "n") & (a.STATVAL > 0)][0]) + 1))
    assert len(targets) == 2, "an AE table is catalogued for RS001"
    for outid, row in targets:
        res = CliRunner().invoke(main, ["trace", "--study", "RS001", "--output", outid,
                                        "--row", str(row), "--out", str(s.root)])
        assert res.exit_code == 0, res.output
        mine = lin[(lin.OUTID == outid) & (lin.ARDROW == row)]
        for subject in mine["USUBJID"].unique():
            assert subject in res.output
        assert "raw EDC records:" in res.output
        for rid in mine.loc[mine.FORM != "", "RECORDID"].unique():
            assert rid in res.output


def test_clinpipe_trace_bad_row_is_a_clear_error(sample_tlf):
    from clinpipe.cli import main

    s = sample_tlf["RS001"]
    outid = load_catalog("RS001").outputs[0].id
    res = CliRunner().invoke(main, ["trace", "--study", "RS001", "--output", outid, "--row",
                                    "999999", "--out", str(s.root)])
    assert res.exit_code == 2 and "ARD rows 1-" in res.output
    res = CliRunner().invoke(main, ["trace", "--study", "RS001", "--output", "t-99", "--row",
                                    "1", "--out", str(s.root)])
    assert res.exit_code == 2 and "no ARD for output t-99" in res.output


def _rtf_pages(path) -> int:
    """Pages as the RTF lays them out: its explicit page breaks plus one."""
    import re

    return len(re.findall(r"\\page\b", path.read_text(encoding="ascii"))) + 1


def _tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make test` (it installs LibreOffice and "
                    "poppler from Debian's packages) or apt-get install libreoffice-writer-nogui "
                    "poppler-utils")
    return path


@pytest.mark.parametrize("study", STUDIES)
def test_rtfs_open_in_libreoffice_and_render(sample_tlf, study, tmp_path):
    """Each RTF converts to PDF with LibreOffice headless; page 1 of one output of each kind is
    rendered to PNG."""
    soffice, pdftoppm = _tool("soffice"), _tool("pdftoppm")
    s = sample_tlf[study]
    cat = load_catalog(study)
    rtfs = [str(s.tlf / f"{o.id}.rtf") for o in cat.outputs]
    subprocess.run([soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), *rtfs],
                   check=True, capture_output=True, timeout=600)
    pdfinfo = _tool("pdfinfo")
    for o in cat.outputs:
        pdf = tmp_path / f"{o.id}.pdf"
        assert pdf.is_file() and pdf.stat().st_size > 1000, f"{o.id}.rtf did not convert"
        # every page as laid out fits LibreOffice's page: no spill-over page without the
        # title block and column headers
        info = subprocess.run([pdfinfo, str(pdf)], check=True, capture_output=True, text=True)
        pages = int(next(ln.split()[-1] for ln in info.stdout.splitlines()
                         if ln.startswith("Pages:")))
        assert pages == _rtf_pages(s.tlf / f"{o.id}.rtf"), f"{o.id}: {pages} PDF pages"
    for kind in ("table", "figure", "listing"):
        first = next((o for o in cat.outputs if o.type == kind), None)
        if first is None:
            continue
        subprocess.run([pdftoppm, "-png", "-r", "50", "-f", "1", "-l", "1",
                        str(tmp_path / f"{first.id}.pdf"), str(tmp_path / first.id)], check=True)
        png = next(tmp_path.glob(f"{first.id}*.png"))
        assert png.stat().st_size > 2000
