"""The second process (issue 18): a build that maps its largest domains in a forked child is
the same, byte for byte, as a build in one process; what fails in the child fails the run
with the child's own error, and the previous build stays."""
import os
from pathlib import Path

import pytest

from clinpipe import second_process
from clinpipe.errors import ClinpipeError, ExportError
from clinpipe.paths import faulty_data_dir, latest_transfer
from edc.read import read_transfer
from sdtm.run import write_sdtm

pytestmark = pytest.mark.skipif(not second_process.can_fork(), reason="needs Linux fork and two cores")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in {".xpt", ".parquet", ".json", ".csv"}}


@pytest.mark.parametrize("study,transfer", [
    ("RS001", lambda: latest_transfer("RS001") / "csv"),
    ("GLOCART", lambda: latest_transfer("GLOCART") / "csv"),
    ("RS001", lambda: latest_transfer("RS001", faulty_data_dir()) / "csv"),
], ids=["RS001", "GLOCART", "RS001-faulty"])
def test_two_processes_build_what_one_builds(study, transfer, tmp_path, monkeypatch):
    """And letting go of the raw frames as the build goes (keep_raw=False) changes nothing
    either, in one process or two."""
    forks = []
    real = second_process.Elsewhere

    def counted(work, what):
        forks.append(what)
        return real(work, what)

    monkeypatch.setattr(second_process, "Elsewhere", counted)
    builds = {}
    for n, keep in [(1, True), (2, True), (1, False), (2, False)]:
        raw = read_transfer(transfer(), study=study)
        records = {form: len(df) for form, df in raw.frames.items()}
        run = write_sdtm(raw, tmp_path / f"{n}{keep}", progress=lambda m: None, processes=n, keep_raw=keep)
        builds[n, keep] = (run, _files(run.folder.parent))
        cut = {form for form, df in raw.frames.items() if set(df.columns) <= {"SUBJECT", "RECORDID", "FOLDERNAME"}}
        assert cut == (set() if keep else set(records))    # cut down in place only when asked
        assert {form: len(df) for form, df in raw.frames.items()} == records
    assert len(forks) == 2 and all(f.startswith("mapping LB") for f in forks), forks   # only the 2-process builds forked
    one, one_files = builds[1, True]
    for key, (run, files) in builds.items():
        assert sorted(files) == sorted(one_files)
        assert [f for f in one_files if one_files[f] != files[f]] == [], key   # every XPT, parquet, manifest, trace, report csv
        for attr in ("rejections", "issues", "reconciliation"):
            assert getattr(one.build, attr).equals(getattr(run.build, attr)), (key, attr)
        assert list(one.build.results) == list(run.build.results)


def test_an_error_in_the_child_is_raised_as_itself():
    def fails():
        raise ExportError("impossible date", file="lb.csv", record="17", field="LBDAT", hint="query the site")

    with pytest.raises(ExportError) as caught:
        second_process.Elsewhere(fails, "test").result()
    assert caught.value.message == "lb.csv, record 17, field LBDAT: impossible date -> query the site"


def test_a_bug_in_the_child_carries_its_traceback():
    def bug():
        return {}["missing"]

    with pytest.raises(KeyError) as caught:
        second_process.Elsewhere(bug, "test").result()
    assert "in the second process" in "".join(caught.value.__notes__)
    assert "return {}[\"missing\"]" in "".join(caught.value.__notes__)


def test_a_child_that_dies_is_an_error_naming_its_exit_code():
    with pytest.raises(ClinpipeError, match="exit code 3 and no result"):
        second_process.Elsewhere(lambda: os._exit(3), "test").result()


def test_a_failure_in_the_child_keeps_the_previous_build(tmp_path, monkeypatch):
    study = "RS001"
    first = write_sdtm(read_transfer(latest_transfer(study) / "csv", study=study), tmp_path,
                       progress=lambda m: None, processes=2)
    before = _files(first.folder.parent)
    import sdtm.build

    real = sdtm.build.combine_parts

    def broken(domain, parts):
        if domain == "LB" and os.getpid() != parent:
            raise ExportError("broken in the child", file="lb.csv")
        return real(domain, parts)

    parent = os.getpid()
    monkeypatch.setattr(sdtm.build, "combine_parts", broken)
    with pytest.raises(ExportError, match="broken in the child"):
        write_sdtm(read_transfer(latest_transfer(study) / "csv", study=study), tmp_path,
                   progress=lambda m: None, processes=2)
    assert _files(first.folder.parent) == before
    assert not list(first.folder.parent.glob(".*staging*"))


@pytest.mark.parametrize("value,expected", [("1", 1), ("2", 2), ("", 2)])
def test_processes_follows_the_environment(value, expected, monkeypatch):
    monkeypatch.setenv(second_process.ENV, value)
    assert second_process.processes() == expected


def test_a_bad_process_count_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(second_process.ENV, "many")
    with pytest.raises(ClinpipeError, match="CLINPIPE_PROCESSES='many' is not a process count"):
        second_process.processes()
