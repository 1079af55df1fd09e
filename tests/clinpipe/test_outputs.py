import openpyxl
import pandas as pd
import pytest

from clinpipe.outputs import staged_layer
from clinpipe.reports import write_report


def test_staged_layer_replaces_only_on_success(tmp_path):
    with staged_layer("S1", "reports", tmp_path, transfer="T1") as d:
        (d / "a.txt").write_text("good run")
    final = tmp_path / "S1" / "T1" / "reports"
    assert (final / "a.txt").read_text() == "good run"

    with pytest.raises(RuntimeError), staged_layer("S1", "reports", tmp_path, transfer="T1") as d:
        (d / "a.txt").write_text("half-written")
        raise RuntimeError("boom")
    # the failed run left the previous good output and no staging debris
    assert (final / "a.txt").read_text() == "good run"
    assert sorted(p.name for p in (tmp_path / "S1" / "T1").iterdir()) == ["reports"]


def test_unknown_layer_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown output layer"), staged_layer("S1", "nonsense", tmp_path, transfer="T1"):
        pass


def test_report_formats_open(tmp_path):
    sheets = {"summary": pd.DataFrame({"form": ["AE", "DM"], "records": [3, 2]}),
              "details": pd.DataFrame({"x": ["<b>&"]})}
    files = write_report(tmp_path, "r", "Title <1>", sheets, {"study": "S1"})
    assert [f.name for f in files] == ["r.xlsx", "r.csv", "r.html"]
    wb = openpyxl.load_workbook(files[0])
    assert wb.sheetnames == ["about", "summary", "details"]
    assert wb["summary"]["A2"].value == "AE"
    assert pd.read_csv(files[1]).records.tolist() == [3, 2]
    page = files[2].read_text()
    assert "&lt;b&gt;&amp;" in page and "Title &lt;1&gt;" in page
    assert "<link" not in page and "src=" not in page  # self-contained


def test_leftovers_of_a_killed_run_are_cleared_or_put_back(tmp_path):
    from clinpipe.outputs import staged_layer

    build = tmp_path / "S1" / "T1"
    with staged_layer("S1", "sdtm", tmp_path, transfer="T1") as d:
        (d / "dm.xpt").write_text("good")
    # SIGKILL while staging: a staging folder stays behind
    (build / ".sdtm.staging-dead0001").mkdir()
    # SIGKILL between the two renames: the previous layer sits in .old, nothing in place
    (build / "sdtm").rename(build / ".sdtm.old-dead0002")
    with staged_layer("S1", "reports", tmp_path, transfer="T1") as d:
        (d / "r.txt").write_text("x")
    assert (build / ".sdtm.staging-dead0001").exists()   # other layers' leftovers are theirs
    with staged_layer("S1", "sdtm", tmp_path, transfer="T1") as d:
        assert (build / "sdtm" / "dm.xpt").read_text() == "good"   # put back before the new run
        (d / "dm.xpt").write_text("new")
    assert sorted(p.name for p in build.iterdir()) == ["reports", "sdtm"]
    assert (build / "sdtm" / "dm.xpt").read_text() == "new"


def test_latest_points_at_the_newest_complete_build(tmp_path):
    import os

    from clinpipe.errors import OutputError
    from clinpipe.paths import build_dir, built_transfers, point_latest, study_out

    with pytest.raises(OutputError, match="no SDTM built for S1 yet"):
        study_out("S1", "sdtm", tmp_path)
    for t in ("2025-05-27", "2025-02-27"):
        (tmp_path / "S1" / t / "sdtm").mkdir(parents=True)
        point_latest("S1", tmp_path, t)
        assert os.readlink(tmp_path / "S1" / "latest") == "2025-05-27"   # never back to an older cut
    (tmp_path / "S1" / "2025-08-01" / "reports").mkdir(parents=True)
    assert built_transfers("S1", tmp_path) == ["2025-02-27", "2025-05-27", "2025-08-01"]
    assert built_transfers("S1", tmp_path, "sdtm") == ["2025-02-27", "2025-05-27"]
    assert study_out("S1", "sdtm", tmp_path) == tmp_path / "S1" / "2025-05-27" / "sdtm"
    assert build_dir("S1", tmp_path, "2025-02-27") == tmp_path / "S1" / "2025-02-27"
