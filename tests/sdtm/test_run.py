"""SDTM from the sample transfers: same data whatever the delivery format, XPT read back
exactly, byte-identical reruns, every raw record reconciled."""
import pandas as pd
import pytest

from clinpipe.paths import latest_transfer
from edc.read import read_transfer
from sdtm import metadata
from sdtm.build import build_sdtm
from sdtm.run import run_sdtm, sdtm_datasets, write_sdtm
from sdtm.xpt import read_xpt

STUDIES = ["RS001", "GLOCART"]


@pytest.fixture(scope="module", params=STUDIES)
def written(request, tmp_path_factory):
    study = request.param
    out = tmp_path_factory.mktemp(study)
    return run_sdtm(study, latest_transfer(study) / "csv", out, progress=lambda m: None)


@pytest.mark.parametrize("study", STUDIES)
def test_csv_and_odm_give_identical_sdtm(study):
    by_format = {}
    for fmt in ("csv", "odm"):
        raw = read_transfer(latest_transfer(study) / fmt, study=study)
        by_format[fmt] = sdtm_datasets(raw, build_sdtm(raw))
    assert list(by_format["csv"]) == list(by_format["odm"])
    for name, df in by_format["csv"].items():
        pd.testing.assert_frame_equal(df.reset_index(drop=True), by_format["odm"][name].reset_index(drop=True),
                                      obj=f"{study} {name}")


def test_xpt_reads_back_with_values_labels_and_types(written):
    for name, info in written.written.items():
        back, meta = read_xpt(info["xpt"])
        dom = metadata.domain(name)
        assert meta.dataset == name and meta.label == dom.label[:40]
        assert list(back.columns) == [v.name for v in dom.variables if v.name in back.columns]
        for col in back.columns:
            var = dom.var(col)
            assert meta.labels[col] == var.label, (name, col)
            assert meta.types[col] == var.type, (name, col)
        parquet = pd.read_parquet(info["parquet"])
        pd.testing.assert_frame_equal(back, parquet, check_dtype=False, obj=name)
        assert len(back) == info["rows"]


def test_required_variables_present_and_keys_unique(written):
    for name in written.datasets:
        dom = metadata.domain(name)
        back, _ = read_xpt(written.written[name]["xpt"])
        for var in dom.required():
            assert var in back.columns, (name, var)
        seq = f"{name}SEQ"
        if seq in back.columns:
            # subject-level datasets: USUBJID + --SEQ; TS: TSPARMCD + TSSEQ
            key = ["USUBJID", seq] if "USUBJID" in back.columns else ["TSPARMCD", seq]
            assert not back.duplicated(key).any(), name


def test_rerun_is_byte_identical(written, tmp_path):
    again = run_sdtm(written.study, latest_transfer(written.study) / "csv", tmp_path, progress=lambda m: None)
    for name, info in written.written.items():
        assert again.written[name]["sha256"] == info["sha256"], name


def test_every_raw_record_of_mapped_forms_is_accounted_for(written):
    rec = written.build.reconciliation
    mapped = rec[rec.STATUS == "mapped"]
    assert (mapped.UNACCOUNTED == 0).all(), mapped
    assert (mapped.MAPPED + mapped.REJECTED == mapped.RECORDS).all()
    assert written.build.issues.empty, written.build.issues


def test_text_over_200_characters_is_split_by_the_writer_as_before(tmp_path):
    # The writer splits long text when the conformed distinct values show some (issue 18);
    # the reference is the split done up front on every dataset, then each one written.
    import datetime as dt

    from sdtm.write import write_dataset

    raw = read_transfer(latest_transfer("RS001") / "csv", study="RS001")
    enr = raw.frames["ENR"].copy()
    enr.loc[enr.index[0], "HISTOL_DEC"] = "Diffuse large B-cell lymphoma, " + "not otherwise specified; " * 10
    raw.frames["ENR"] = enr
    run = write_sdtm(raw, tmp_path / "new", progress=lambda m: None)
    supp = pd.read_parquet(run.written["SUPPMH"]["parquet"])
    assert "MHTERM1" in set(supp["QNAM"])
    reference = sdtm_datasets(raw, build_sdtm(raw))
    assert sorted(reference) == sorted(run.written)
    stamp = dt.datetime.combine(raw.transfer_date, dt.time())
    for name, df in reference.items():
        ref = write_dataset(df, name, tmp_path / "ref", timestamp=stamp)
        for kind in ("xpt", "parquet"):
            assert ref[kind].read_bytes() == run.written[name][kind].read_bytes(), (name, kind)


def test_non_ascii_text_is_transliterated_in_the_xpt_and_kept_in_the_parquet(tmp_path):
    # issue 13 item 1: one non-ASCII value no longer stops the build; the XPT (FDA: ASCII)
    # holds it transliterated, the parquet as collected, and the mapping issues name the record
    from sdtm.conform import transliterate

    assert [transliterate(t) for t in ["Fièvre à 39°C", "10 µg/L", "ﬁne", "Øst", "plain"]] == [
        "Fievre a 39?C", "10 ug/L", "fine", "Ost", "plain"]
    raw = read_transfer(latest_transfer("RS001") / "csv", study="RS001")
    enr = raw.frames["ENR"].copy()
    enr.loc[enr.index[0], "HISTOL_DEC"] = "Lymphome diffus à grandes cellules B"
    raw.frames["ENR"] = enr
    run = write_sdtm(raw, tmp_path, progress=lambda m: None)
    xpt, _ = read_xpt(run.written["MH"]["xpt"])
    parquet = pd.read_parquet(run.written["MH"]["parquet"])
    assert "Lymphome diffus a grandes cellules B" in set(xpt["MHTERM"])
    assert "Lymphome diffus à grandes cellules B" in set(parquet["MHTERM"])
    assert all(v.isascii() for col in xpt.columns if xpt[col].dtype == object for v in xpt[col])
    issues = run.build.issues[run.build.issues["MESSAGE"].str.startswith("not ASCII")]
    assert issues[["DOMAIN", "VARIABLE", "VALUE"]].values.tolist() == [
        ["MH", "MHTERM", "Lymphome diffus à grandes cellules B"]]
    # the MH record's own raw record (mh_dx.yaml: a DX record, its MHTERM read from ENR)
    assert issues["FORM"].iloc[0] in ("DX", "ENR") and issues["RECORDID"].iloc[0] != ""


def test_a_write_failing_on_the_writer_thread_stops_the_run_and_keeps_the_previous_sdtm(tmp_path, monkeypatch):
    # the datasets are written on a second thread (issue 18): its error must reach the caller
    # as it did from the main thread, and the previous build must be left as it was
    import sdtm.run as sdtm_run
    from clinpipe.errors import OutputError

    raw = read_transfer(latest_transfer("RS001") / "csv", study="RS001")
    # one process: the writer thread this test is about (the second process: test_second_process)
    first = write_sdtm(raw, tmp_path, progress=lambda m: None, processes=1)
    before = {p.name: p.read_bytes() for p in first.folder.glob("*.xpt")}
    real = sdtm_run.write_conformed
    written = []

    def failing(data, texts, name, folder, **kw):
        if name == "VS":
            raise OutputError("VS.VSORRES holds a value the transport file cannot take",
                              file=folder / "vs.xpt", hint="fix the mapping")
        written.append(name)
        return real(data, texts, name, folder, **kw)

    monkeypatch.setattr(sdtm_run, "write_conformed", failing)
    with pytest.raises(OutputError, match="VS.VSORRES"):
        write_sdtm(raw, tmp_path, progress=lambda m: None, processes=1)
    assert written, "datasets before VS were written on the writer thread"
    assert {p.name: p.read_bytes() for p in first.folder.glob("*.xpt")} == before
    assert not list(first.folder.parent.glob(".sdtm.staging-*"))
