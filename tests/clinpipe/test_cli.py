"""The command line as a user meets it: --help everywhere, the demo, clear errors."""
import pytest
from click.testing import CliRunner

from clinpipe.cli import main
from clinpipe.paths import REPO_ROOT, study_out


@pytest.mark.parametrize("args", [[], ["simulate"], ["read"], ["sdtm"], ["validate"], ["adam"], ["tlf"], ["trace"],
                                  ["demo"], ["studies"], ["run"], ["package"], ["changes"], ["ui"]])
def test_help_everywhere(args):
    res = CliRunner().invoke(main, args + ["--help"])
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.output


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One `clinpipe demo` of both studies (through Dagster), shared by the tests below."""
    out = tmp_path_factory.mktemp("demo")
    res = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_demo_writes_every_layer(demo):
    tmp_path, output = demo
    for study in ("RS001", "GLOCART"):
        transfers = sorted(p.name for p in (tmp_path / study).iterdir() if p.name != "latest")
        assert transfers == sorted(p.name for p in (REPO_ROOT / "data" / "raw" / study).iterdir())
        # the newest transfer is `latest`; each transfer is its own complete build
        assert (tmp_path / study / "latest").resolve() == (tmp_path / study / transfers[-1]).resolve()
        for t in transfers:
            base = tmp_path / study / t
            assert sorted(p.name for p in base.iterdir()) == ["adam", "reports", "sdtm", "submission", "tlf"]
        reports = study_out(study, "reports", tmp_path)
        assert {p.name for p in reports.iterdir()} >= {"raw_summary.html", "raw_summary.xlsx",
                                                        "raw_summary.csv", "sdtm_reconciliation.html"}
        assert (study_out(study, "sdtm", tmp_path) / "dm.xpt").is_file()
        assert (study_out(study, "adam", tmp_path) / "adsl.xpt").is_file()
        assert "CSV = ODM: identical frames" in output
        assert (tmp_path / study / transfers[-1] / "submission" / "manifest.json").is_file()
        _faulty_copy_is_reported(study_out(study, "reports", tmp_path / "with-faults"))
    # RS001 has an interim cut: its newest build reports what changed since
    changes = tmp_path / "RS001" / "latest" / "reports"
    assert {"changes.html", "changes.xlsx"} <= {p.name for p in changes.iterdir()}


def _faulty_copy_is_reported(out):
    """The demo's faulty copy shows each injected record fault where a data manager looks:
    rejected records in the reconciliation (nothing UNACCOUNTED), the rest as reader findings."""
    import json

    import pandas as pd

    from clinpipe.paths import faulty_data_dir, latest_transfer

    faults = json.loads((latest_transfer(out.parent.parent.name, faulty_data_dir()) / "csv" / "faults.json")
                        .read_text())["faults"]
    assert {f["kind"] for f in faults} >= {"duplicate_record", "inactivated_record", "orphan_subject",
                                           "impossible_date", "unknown_code", "out_of_range"}
    rec = pd.read_csv(out / "sdtm_reconciliation.csv")
    assert rec.UNACCOUNTED.sum() == 0
    rejected = {f["form"] for f in faults if f["kind"] in ("duplicate_record", "inactivated_record", "orphan_subject")}
    assert (rec.set_index("FORM").loc[sorted(rejected), "REJECTED"] >= 1).all()
    findings = pd.read_excel(out / "raw_summary.xlsx", sheet_name="findings", dtype=str)
    found = set(zip(findings.form, findings.record, findings.field))
    for f in faults:
        if f["kind"] in ("impossible_date", "unknown_code", "out_of_range"):
            assert (f["form"], f["record"], f["field"]) in found, (f, found)


def test_demo_failure_keeps_previous_outputs(demo, monkeypatch):
    tmp_path, _ = demo
    tree = sorted(p.relative_to(tmp_path) for p in (tmp_path / "RS001").rglob("*"))
    before = (study_out("RS001", "reports", tmp_path) / "raw_summary.csv").read_bytes()
    dm_before = (study_out("RS001", "sdtm", tmp_path) / "dm.xpt").read_bytes()
    index_before = (study_out("RS001", "tlf", tmp_path) / "index.csv").read_bytes()
    monkeypatch.setenv("CLINPIPE_RAW", str(tmp_path / "no-such-raw"))
    res = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--study", "RS001"])
    assert res.exit_code == 1
    assert "no transfer folder found" in res.output
    assert (study_out("RS001", "reports", tmp_path) / "raw_summary.csv").read_bytes() == before
    assert (study_out("RS001", "sdtm", tmp_path) / "dm.xpt").read_bytes() == dm_before
    assert (study_out("RS001", "tlf", tmp_path) / "index.csv").read_bytes() == index_before
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "RS001").rglob("*")) == tree


def test_read_missing_folder_is_one_clear_line(tmp_path):
    res = CliRunner().invoke(main, ["read", "--transfer", str(tmp_path / "missing")])
    assert res.exit_code == 2
    assert "missing" in res.output and "Traceback" not in res.output


def test_simulate_rejects_unknown_fault(tmp_path):
    res = CliRunner().invoke(main, ["simulate", "--study", "RS001", "--out", str(tmp_path / "x"),
                                    "--faults", "gremlins"])
    assert res.exit_code == 2 and "unknown fault kind 'gremlins'" in res.output


def test_simulate_refuses_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    res = CliRunner().invoke(main, ["simulate", "--study", "RS001", "--subjects", "5",
                                    "--out", str(tmp_path)])
    assert res.exit_code == 2 and "not empty" in res.output
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_validate_any_sdtm_folder_and_exit_codes(demo, tmp_path):
    import pandas as pd

    sdtm = study_out("RS001", "sdtm", demo[0])
    ok = CliRunner().invoke(main, ["validate", "--study", "RS001", "--sdtm", str(sdtm), "--out", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "0 open ERROR" in ok.output
    # a copy of the SDTM with a broken date, delivered as parquet only: found, named, exit 1
    other = tmp_path / "elsewhere"
    other.mkdir()
    for p in sdtm.glob("*.parquet"):
        df = pd.read_parquet(p)
        if p.stem == "ae":
            df.loc[0, "AESTDTC"] = "2025-13-01"
        df.to_parquet(other / p.name)
    bad = CliRunner().invoke(main, ["validate", "--study", "RS001", "--sdtm", str(other), "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 1, bad.output
    details = pd.read_csv(study_out("RS001", "reports", tmp_path / "o2") / "conformance.csv", keep_default_na=False)
    hit = details[(details.DATASET == "AE") & (details.VARIABLE == "AESTDTC") & (details.VALUE == "2025-13-01")]
    assert len(hit) >= 1 and (hit.SEVERITY == "ERROR").all()
    missing = CliRunner().invoke(main, ["validate", "--study", "RS001", "--sdtm", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "SDTM folder not found" in missing.output


def test_validate_corrupt_parquet_is_one_clear_line(tmp_path):
    """Found by the data-layer review (issue 13): a corrupt parquet gave an ArrowInvalid traceback."""
    (tmp_path / "ae.parquet").write_text("not parquet")
    res = CliRunner().invoke(main, ["validate", "--study", "RS001", "--sdtm", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "ae.parquet" in res.output and "not a readable parquet file" in res.output
    assert "Traceback" not in res.output



def test_run_stops_at_open_errors_with_exit_1(tmp_path):
    """The faulty sample copy has an open SDTM ERROR: `clinpipe run` maps and reports it, builds
    nothing downstream (as Dagster's blocking check would) and exits 1, naming the report."""
    from clinpipe.paths import faulty_data_dir, latest_transfer

    res = CliRunner().invoke(main, ["run", "--study", "RS001", "--transfer",
                                    str(latest_transfer("RS001", faulty_data_dir())), "--out", str(tmp_path)])
    assert res.exit_code == 1, res.output
    assert "stopped at SDTM conformance" in res.output and "conformance.html" in res.output
    build = next(p for p in (tmp_path / "RS001").iterdir() if p.is_dir())
    assert sorted(p.name for p in build.iterdir()) == ["reports", "sdtm"]
    assert not (tmp_path / "RS001" / "latest").exists()
    # the run log beside the builds says where it stopped, as an ERROR line
    log = (tmp_path / "RS001" / "run.log").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("ERROR: ") and "stopped at SDTM conformance" in line for line in log)
    assert log[-1].startswith("WARNING: run finished (exit 1)")


def test_unknown_study_lists_the_configured_ones():
    res = CliRunner().invoke(main, ["run", "--study", "../mappings/RS001"])
    assert res.exit_code == 2 and "unknown study" in res.output and "RS001" in res.output


@pytest.mark.parametrize("command", ["read", "sdtm", "run"])
def test_encoding_option_where_the_reader_error_says_to_use_it(command):
    # the reader's hint names `--encoding cp1252` for these three commands (issue 13 item 5)
    res = CliRunner().invoke(main, [command, "--help"])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "--encoding" in text and "not valid UTF-8" in text


def test_sdtm_validate_writes_conformance_and_queries_and_exits_1_on_open_errors(tmp_path):
    # issue 13 item 10: `sdtm --validate` is sdtm then validate, with the report paths printed
    from clinpipe.paths import faulty_data_dir, latest_transfer

    clean = CliRunner().invoke(main, ["sdtm", "--study", "GLOCART", "--validate", "--out", str(tmp_path / "a")])
    assert clean.exit_code == 0, clean.output
    assert "0 open ERROR" in clean.output and "conformance.html" in clean.output
    reports = study_out("GLOCART", "reports", tmp_path / "a")
    assert (reports / "conformance.html").is_file() and (reports / "conformance_queries.csv").is_file()
    faulty = CliRunner().invoke(main, ["sdtm", "--study", "RS001", "--validate", "--transfer",
                                       str(latest_transfer("RS001", faulty_data_dir())),
                                       "--out", str(tmp_path / "b")])
    assert faulty.exit_code == 1, faulty.output
    assert "1 open ERROR" in faulty.output and "conformance_queries.csv" in faulty.output
