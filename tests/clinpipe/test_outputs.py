import openpyxl
import pandas as pd
import pytest

from clinpipe.outputs import staged_layer
from clinpipe.reports import write_report


def test_staged_layer_replaces_only_on_success(tmp_path):
    with staged_layer("S1", "reports", tmp_path) as d:
        (d / "a.txt").write_text("good run")
    final = tmp_path / "S1" / "reports"
    assert (final / "a.txt").read_text() == "good run"

    with pytest.raises(RuntimeError), staged_layer("S1", "reports", tmp_path) as d:
        (d / "a.txt").write_text("half-written")
        raise RuntimeError("boom")
    # the failed run left the previous good output and no staging debris
    assert (final / "a.txt").read_text() == "good run"
    assert sorted(p.name for p in (tmp_path / "S1").iterdir()) == ["reports"]


def test_unknown_layer_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown output layer"), staged_layer("S1", "nonsense", tmp_path):
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
