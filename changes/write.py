"""The change report on disk: changes.html (summary first, sortable and filterable tables),
changes.xlsx (summary, record changes, ARD changes), and the full detail as parquet and csv
(changes.* for records, ard_changes.* for TLF numbers). Byte-identical for the same builds:
no clock time anywhere (the xlsx carries the new transfer date as its creation date)."""
from __future__ import annotations

import datetime as dt
import io
import math
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from jinja2 import Environment, FileSystemLoader, select_autoescape
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from changes.compare import ChangeReport

TEMPLATES = Path(__file__).resolve().parent / "templates"
HTML_MAX_ROWS = 5_000          # per detail table; the files hold every row
XLSX_MAX_ROWS = 100_000
_HEADER_FILL = PatternFill("solid", fgColor="EEF2F7")


def _summary_rows(report: ChangeReport) -> list[tuple[str, str]]:
    t = report.totals()
    return [("study", report.study), ("old transfer", report.old_transfer),
            ("new transfer", report.new_transfer),
            ("records added", str(t["records_added"])), ("records removed", str(t["records_removed"])),
            ("records changed", str(t["records_changed"])),
            ("datasets added / removed", f"{t['datasets_added']} / {t['datasets_removed']}"),
            ("TLF numbers moved", str(t["ard_moved"])),
            ("TLF numbers added / removed", f"{t['ard_added']} / {t['ard_removed']}"),
            ("TLF outputs added / removed", f"{t['outputs_added']} / {t['outputs_removed']}")]


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    text = frame.astype(object).where(frame.notna(), "")
    for c in frame.columns:
        if pd.api.types.is_float_dtype(frame[c]):
            text[c] = ["" if math.isnan(v) else f"{v:.6g}" for v in frame[c].to_numpy()]
    return text.astype(str).to_numpy().tolist()


def _section(sid: str, title: str, frame: pd.DataFrame, file: str) -> dict:
    shown = frame.head(HTML_MAX_ROWS)
    return {"id": sid, "title": title, "columns": list(frame.columns), "rows": _cells(shown),
            "numeric": [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns],
            "total": len(frame), "shown": len(shown), "file": file}


def render_html(report: ChangeReport) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2", "html"]),
                      keep_trailing_newline=True)
    sections = [_section("datasets", "Datasets", report.dataset_summary(), "changes.xlsx"),
                _section("outputs", "TLF outputs", report.output_summary(), "changes.xlsx"),
                _section("records", "Record changes", report.records, "changes.parquet / changes.csv"),
                _section("ard", "TLF numbers (ARD rows)", report.ard, "ard_changes.parquet / ard_changes.csv")]
    return env.get_template("changes.html.j2").render(
        study=report.study, old_transfer=report.old_transfer, new_transfer=report.new_transfer,
        old=report.old.as_posix(), new=report.new.as_posix(), totals=_summary_rows(report)[3:],
        sections=sections)


def _sheet(wb: Workbook, title: str, frame: pd.DataFrame) -> None:
    """A sheet with a bold frozen header, an autofilter and widths fitting the content."""
    ws = wb.create_sheet(title)
    rows = frame.head(XLSX_MAX_ROWS)
    widths = []
    for c in frame.columns:
        sample = rows[c].head(500).astype(str)
        longest = int(sample.str.len().max()) if len(sample) else 0
        widths.append(min(max(len(str(c)), longest) + 2, 60))
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(max(len(frame.columns), 1))}{len(rows) + 1}"
    header = []
    for c in frame.columns:
        cell = _header_cell(ws, str(c))
        header.append(cell)
    ws.append(header)
    values = rows.astype(object).where(rows.notna(), None).to_numpy().tolist()
    for row in values:
        ws.append([_plain(v) for v in row])


def _header_cell(ws, text: str):
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=text)
    cell.font = Font(bold=True)
    cell.fill = _HEADER_FILL
    return cell


def _plain(v):
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def _fixed_zip(path: Path, when: dt.datetime) -> None:
    """Rewrite an xlsx with fixed zip entry times and document dates (openpyxl stamps now)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)",
                              rb"\g<1>" + stamp.encode() + rb"\g<3>", data)
            out = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            out.compress_type = zipfile.ZIP_DEFLATED
            out.external_attr = info.external_attr
            dst.writestr(out, data)
    path.write_bytes(buf.getvalue())


def write_xlsx(report: ChangeReport, path: Path) -> Path:
    wb = Workbook(write_only=True)
    summary = pd.DataFrame(_summary_rows(report), columns=["ITEM", "VALUE"])
    _sheet(wb, "summary", summary)
    _sheet(wb, "datasets", report.dataset_summary())
    _sheet(wb, "outputs", report.output_summary())
    _sheet(wb, "record changes", report.records)
    _sheet(wb, "ARD changes", report.ard)
    when = _report_time(report)
    wb.properties.creator = "clinpipe"
    wb.properties.created = when
    wb.properties.modified = when
    wb.save(path)
    _fixed_zip(path, when)
    return path


def _report_time(report: ChangeReport) -> dt.datetime:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(report.new_transfer), dt.time())
    except ValueError:
        return dt.datetime(1980, 1, 1)


def _parquet(frame: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path)
    return path


def write_change_report(report: ChangeReport, out_dir: Path) -> dict[str, Path]:
    """Write the report into `out_dir` (created); returns {kind: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / "changes.html", "xlsx": out_dir / "changes.xlsx",
             "parquet": out_dir / "changes.parquet", "csv": out_dir / "changes.csv",
             "ard_parquet": out_dir / "ard_changes.parquet", "ard_csv": out_dir / "ard_changes.csv"}
    paths["html"].write_text(render_html(report), encoding="utf-8")
    write_xlsx(report, paths["xlsx"])
    _parquet(report.records, paths["parquet"])
    report.records.to_csv(paths["csv"], index=False, lineterminator="\n")
    _parquet(report.ard, paths["ard_parquet"])
    report.ard.to_csv(paths["ard_csv"], index=False, lineterminator="\n")
    return paths
