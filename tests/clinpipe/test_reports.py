"""The report writers (issue 18): full detail through Arrow, byte-stable; streamed xlsx with a
frozen header, autofilter and widths; one self-contained html with sortable, filterable tables."""
import openpyxl
import pandas as pd
import pyarrow.parquet as pq

from clinpipe.reports import render_html, write_report, write_table, write_xlsx


def _frame():
    return pd.DataFrame({"RULE": ["R1", "R2", "R3"], "SEQ": [1.0, float("nan"), 3.0],
                         "VALUE": ["=HYPERLINK(\"x\")", None, "<b>&"], "N": [1, 2, 3]})


def test_full_detail_through_arrow_is_byte_stable(tmp_path):
    a = write_table(_frame(), tmp_path / "a.csv", tmp_path / "a.parquet")
    b = write_table(_frame(), tmp_path / "b.csv", tmp_path / "b.parquet")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    back = pd.read_csv(a[0], keep_default_na=False)
    assert back["RULE"].tolist() == ["R1", "R2", "R3"] and back["VALUE"].iloc[2] == "<b>&"
    table = pq.read_table(a[1])
    assert table.schema.metadata is None                     # no pandas version in the bytes
    assert table.column("SEQ").null_count == 1 and table.num_rows == 3


def test_xlsx_sheets_are_frozen_filtered_sized_and_never_run_formulas(tmp_path):
    path = write_xlsx(tmp_path / "r.xlsx", {"details": _frame()}, {"study": "S1"})
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["about", "details"]
    ws = wb["details"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:D4"
    assert ws["A1"].font.bold and ws.column_dimensions["C"].width > 10
    assert ws["C2"].value == "=HYPERLINK(\"x\")" and ws["C2"].data_type == "s"
    assert ws["B3"].value is None and ws["C3"].value is None and ws["D4"].value == 3


def test_html_is_one_file_with_sortable_filterable_escaped_tables():
    page = render_html("T <1>", {"details": _frame(), "empty": _frame().iloc[:0]}, {"study": "S1"},
                       notes={"details": "the first 2 of 3"})
    assert "T &lt;1&gt;" in page and "&lt;b&gt;&amp;" in page and "the first 2 of 3" in page
    assert 'class="sortable"' in page and 'input class="filter"' in page and "<script>" in page
    assert "<link" not in page and "src=" not in page
    assert "<td>nan</td>" not in page and "None" not in page          # missing shows as empty


def test_write_report_with_detail_writes_csv_and_parquet(tmp_path):
    files = write_report(tmp_path, "c", "C", {"summary": _frame().head(1)}, {"study": "S1"},
                         detail=_frame())
    assert [f.name for f in files] == ["c.xlsx", "c.csv", "c.parquet", "c.html"]
    assert len(pd.read_csv(files[1])) == 3 and pq.read_table(files[2]).num_rows == 3


def test_csv_cells_never_start_a_formula_and_parquet_keeps_the_values(tmp_path):
    # OWASP's CSV injection rule; plain signed numbers stay numbers
    values = ["=1+1", "-1.5", "-1+1", "+3", "@SUM(A1)", "\tx", "plain", None, "-", "-2e-3", "a=b"]
    want = ["'=1+1", "-1.5", "'-1+1", "+3", "'@SUM(A1)", "'\tx", "plain", "", "'-", "-2e-3", "a=b"]
    frame = pd.DataFrame({"VALUE": values, "N": range(len(values))})
    csv, parquet = write_table(frame, tmp_path / "d.csv", tmp_path / "d.parquet")
    back = pd.read_csv(csv, keep_default_na=False, dtype=str)
    assert back["VALUE"].tolist() == want
    assert pq.read_table(parquet).column("VALUE").to_pylist() == values
    # the csv of a report without full detail (written by pandas) follows the same rule
    files = write_report(tmp_path / "r", "r", "R", {"listing": frame})
    listing = pd.read_csv(files[1], keep_default_na=False, dtype=str)
    assert listing["VALUE"].tolist() == want and listing["N"].tolist() == [str(i) for i in range(11)]
