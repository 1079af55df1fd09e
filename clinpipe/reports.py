"""Reports people open: one call writes the same sheets as xlsx, csv and a self-contained html.

A report whose detail can run to hundreds of thousands of rows (SDTM conformance) keeps the
full detail in csv and parquet, written through Arrow (`write_table`), and shows people a
readable part of it in the xlsx and html (the caller picks the rows and says so in `notes`).
The html tables sort on a header click and filter as you type (a few lines of inline script;
the page stays one file).

No cell of a report runs as a formula where a person opens it. In xlsx, text starting with '='
is written as text. In csv, which a spreadsheet program would evaluate, text that would start
a formula gets a leading apostrophe (the OWASP rule for CSV injection): text starting with
'=', '@', a tab or a carriage return, or with '+' or '-' unless it is a plain number
('-1.5' stays as it is, '-1+1' becomes "'-1+1"). The parquet beside a csv keeps every value
as it is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from jinja2 import Environment, FileSystemLoader, select_autoescape
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

TEMPLATES = Path(__file__).resolve().parent / "templates"
XLSX_MAX_ROWS = 1_048_575      # Excel's sheet limit, less the header row
_HEADER_FILL = PatternFill("solid", fgColor="EEF2F7")
_WIDTH_SAMPLE = 500            # rows looked at to size a column


def write_report(outdir: Path, name: str, title: str, sheets: dict[str, pd.DataFrame],
                 meta: dict[str, str] | None = None, csv_sheet: str | None = None, *,
                 detail: pd.DataFrame | None = None,
                 notes: dict[str, str] | None = None) -> list[Path]:
    """Write `<name>.xlsx` (one sheet per frame), `<name>.html` and `<name>.csv`.

    The csv holds `csv_sheet` (default: the first sheet), since csv has no sheets. With
    `detail`, the csv holds that frame instead, and `<name>.parquet` too (`write_table`).
    `notes` are captions per sheet, shown under the sheet's heading in the html.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    meta = meta or {}
    xlsx = write_xlsx(outdir / f"{name}.xlsx", sheets, meta)
    if detail is not None:
        tables = write_table(detail, outdir / f"{name}.csv", outdir / f"{name}.parquet")
    else:
        tables = [outdir / f"{name}.csv"]
        frame = sheets[csv_sheet or next(iter(sheets))]
        _csv_safe_frame(frame).to_csv(tables[0], index=False, lineterminator="\n")
    page = outdir / f"{name}.html"
    page.write_text(render_html(title, sheets, meta, notes), encoding="utf-8")
    return [xlsx, *tables, page]


# ---- full detail ---------------------------------------------------------------------------

def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow without pandas' schema metadata (it names the pandas version, which
    would make the same rows give other bytes)."""
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    return table.replace_schema_metadata(None)


def write_table(frame: pd.DataFrame | pa.Table, csv: Path | None = None,
                parquet: Path | None = None) -> list[Path]:
    """Every row to csv and/or parquet through Arrow: the same rows give the same bytes."""
    table = frame if isinstance(frame, pa.Table) else arrow_table(frame)
    out = []
    if csv is not None:
        pa_csv.write_csv(csv_safe(table), csv)
        out.append(csv)
    if parquet is not None:
        pq.write_table(table, parquet)
        out.append(parquet)
    return out


# ---- formula-like text in csv ------------------------------------------------------------

_FORMULA_START = r"^[=@\t\r]"
_SIGNED = r"^[+-]"
_SIGNED_NUMBER = r"^[+-](?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


def csv_safe_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Text with an apostrophe before every value a spreadsheet would run as a formula."""
    starts = pc.match_substring_regex(values, _FORMULA_START)
    signed = pc.and_(pc.match_substring_regex(values, _SIGNED),
                     pc.invert(pc.match_substring_regex(values, _SIGNED_NUMBER)))
    hit = pc.fill_null(pc.or_(starts, signed), False)
    if not pc.any(hit).as_py():
        return values
    return pc.if_else(hit, pc.binary_join_element_wise("'", values, ""), values)


def csv_safe(table: pa.Table) -> pa.Table:
    """`table` with its text columns through `csv_safe_text`."""
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            column = csv_safe_text(table.column(i))
            if column is not table.column(i):
                table = table.set_column(i, field, column)
    return table


def _csv_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`csv_safe` for a frame written by pandas: only text columns with a hit are replaced."""
    out = frame
    for c in frame.columns:
        if frame[c].dtype != object:
            continue
        try:
            text = pa.array(frame[c].to_numpy(), type=pa.string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            continue   # not all text: written as pandas writes it
        safe = csv_safe_text(text)
        if safe is not text:
            if out is frame:
                out = frame.copy()
            out[c] = pd.Series(safe.to_pylist(), index=frame.index, dtype=object).where(frame[c].notna())
    return out


# ---- xlsx ----------------------------------------------------------------------------------

def write_xlsx(path: Path, sheets: dict[str, pd.DataFrame], meta: dict[str, str] | None = None) -> Path:
    """One sheet per frame (an `about` sheet first for `meta`), streamed (openpyxl write-only):
    bold frozen header row, autofilter, column widths fitting the content."""
    wb = Workbook(write_only=True)
    if meta:
        _sheet(wb, "about", pd.DataFrame(list(meta.items()), columns=["item", "value"]))
    for sheet, frame in sheets.items():
        _sheet(wb, sheet[:31], frame)
    wb.save(path)
    return path


def _sheet(wb: Workbook, title: str, frame: pd.DataFrame) -> None:
    ws = wb.create_sheet(title)
    rows = frame.head(XLSX_MAX_ROWS)
    ncol = len(frame.columns)
    for i, c in enumerate(frame.columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = _width(c, rows[c])
    if ncol:
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{get_column_letter(ncol)}{len(rows) + 1}"
    ws.append([_header_cell(ws, str(c)) for c in frame.columns])
    values = _values(rows)
    for i, j in _formula_like(rows):
        # data that starts with '=' is text, not a formula for Excel to run
        values[i][j] = cell = WriteOnlyCell(ws, value=values[i][j])
        cell.data_type = "s"
    for row in values:
        ws.append(row)


def _width(name, values: pd.Series) -> float:
    sample = values.head(_WIDTH_SAMPLE)
    longest = int(sample.astype(str).str.len().max()) if len(sample) else 0
    return min(max(len(str(name)), longest) + 2, 60)


def _header_cell(ws, text: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=text)
    cell.font = Font(bold=True)
    cell.fill = _HEADER_FILL
    return cell


def _formula_like(frame: pd.DataFrame) -> list[tuple[int, int]]:
    out = []
    for j, c in enumerate(frame.columns):
        s = frame[c]
        if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
            hit = s.astype(str).str.startswith("=").to_numpy(dtype=bool, na_value=False) & s.notna().to_numpy()
            out += [(int(i), j) for i in np.flatnonzero(hit)]
    return out


def _values(frame: pd.DataFrame) -> list[list]:
    """Cells as Python values openpyxl writes (None for missing: an empty cell)."""
    cols = []
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_float_dtype(s.dtype):
            v = s.to_numpy(dtype=np.float64).astype(object)
            v[np.isnan(s.to_numpy(dtype=np.float64))] = None
        else:
            v = s.astype(object).where(s.notna(), None).to_numpy()
        cols.append(v)
    return np.column_stack(cols).tolist() if cols and len(frame) else []


# ---- html ----------------------------------------------------------------------------------

def render_html(title: str, sheets: dict[str, pd.DataFrame], meta: dict[str, str] | None = None,
                notes: dict[str, str] | None = None, sortable: bool = True) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2", "html"]),
                      keep_trailing_newline=True)
    notes = notes or {}
    sections = [{"id": f"s{i}", "title": sheet, "note": notes.get(sheet, ""),
                 "columns": [str(c) for c in frame.columns], "rows": _cells(frame),
                 "numeric": [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]}
                for i, (sheet, frame) in enumerate(sheets.items())]
    return env.get_template("report.html.j2").render(
        title=title, meta=[(k, str(v)) for k, v in (meta or {}).items()], sections=sections,
        sortable=sortable)


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    """The frame as text, '' for missing (as `DataFrame.to_html(na_rep='')` showed it)."""
    if frame.empty:
        return []
    text = {}
    for c in frame.columns:
        s = frame[c]
        text[c] = s.astype(object).where(s.notna(), "").astype(str).to_numpy()
    return np.column_stack([text[c] for c in frame.columns]).tolist()
