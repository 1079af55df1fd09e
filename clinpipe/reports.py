"""Reports people open: one call writes the same sheets as xlsx, csv and a self-contained html."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

_CSS = """
body{font-family:system-ui,Segoe UI,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef2f7;position:sticky;top:0}
tr:nth-child(even) td{background:#fafafa}
.meta td:first-child{font-weight:600}
.empty{color:#777;font-style:italic}
"""


def write_report(outdir: Path, name: str, title: str, sheets: dict[str, pd.DataFrame],
                 meta: dict[str, str] | None = None, csv_sheet: str | None = None) -> list[Path]:
    """Write `<name>.xlsx` (one sheet per frame), `<name>.html` and `<name>.csv`.

    The csv holds `csv_sheet` (default: the first sheet), since csv has no sheets.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    meta = meta or {}
    xlsx = outdir / f"{name}.xlsx"
    with pd.ExcelWriter(xlsx, engine="openpyxl") as writer:
        if meta:
            pd.DataFrame(list(meta.items()), columns=["item", "value"]).to_excel(
                writer, sheet_name="about", index=False)
        for sheet, frame in sheets.items():
            frame.to_excel(writer, sheet_name=sheet[:31], index=False)
    csv = outdir / f"{name}.csv"
    sheets[csv_sheet or next(iter(sheets))].to_csv(csv, index=False, lineterminator="\n")
    page = outdir / f"{name}.html"
    page.write_text(_html(title, sheets, meta), encoding="utf-8")
    return [xlsx, csv, page]


def _html(title: str, sheets: dict[str, pd.DataFrame], meta: dict[str, str]) -> str:
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>")
    parts = [head, f"<h1>{html.escape(title)}</h1>"]
    if meta:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in meta.items())
        parts.append(f"<table class='meta'>{rows}</table>")
    for sheet, frame in sheets.items():
        parts.append(f"<h2>{html.escape(sheet)} ({len(frame)} rows)</h2>")
        if frame.empty:
            parts.append("<p class='empty'>none</p>")
        else:
            parts.append(frame.to_html(index=False, escape=True, border=0, na_rep=""))
    parts.append("</body></html>\n")
    return "\n".join(parts)
