"""Submission RTF with rtflite: one layout for every table, listing and figure.

Landscape letter, Times New Roman 10 pt; "Page x of y" top right; title block (output id and
title, then the population line); column headers with (N=..); footnotes and the source block
(method, data cut-off, source datasets, program, run id) on every page; long tables break
into pages by rtflite's row count with the header repeated, and a `page_by` column starts a
new block with its value as a spanning row.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import polars as pl
import rtflite as rtf
from PIL import Image

FONT_SIZE = 10
ROWS_PER_PAGE = 20
# rtflite's layout costs grow with the square of a table's rows (it re-validates the whole
# frame per cell), so long tables are laid out in page-sized parts and joined with
# rtflite.assemble_rtf: linear in rows, the same pages.
CHUNK_ROWS = 4 * ROWS_PER_PAGE
_SIZE = [FONT_SIZE]


def _text(value: str) -> str:
    # rtflite converts LaTeX-like text ({}, ^, _) unless told not to: keep what we wrote,
    # and RTF needs its own escapes for braces and backslashes that are not our \line.
    return (value.replace("\\line", "\x00").replace("\\", "\\\\").replace("{", "\\{")
            .replace("}", "\\}").replace("\x00", "\\line"))


# inches: left, right, top, bottom, header, footer (rtflite's landscape default leaves 2 in
# above the title; a submission page needs the room for footnotes)
MARGINS = [1.0, 1.0, 1.25, 1.0, 0.75, 0.75]


def _page(notes: list[str] = ()) -> rtf.RTFPage:
    # rtflite budgets a fixed number of lines per page; long footnotes (repeated on every page)
    # take body lines, estimated at ~110 characters per printed line
    note_lines = sum(-(-len(n) // 110) for n in notes)
    nrow = max(8, ROWS_PER_PAGE + 4 - note_lines)
    return rtf.RTFPage(orientation="landscape", nrow=nrow, page_footnote="all",
                       page_source="all", border_first="double", border_last="double",
                       margin=MARGINS)


def _common(title_lines: list[str], footnotes: list[str], source: list[str],
            as_table: bool = True) -> dict:
    return {
        "rtf_page": _page([*footnotes, *source]),
        "rtf_page_header": rtf.RTFPageHeader(text_font_size=_SIZE),
        "rtf_title": rtf.RTFTitle(text=[_text(t) for t in title_lines], text_font_size=_SIZE,
                                  text_convert=[False]),
        "rtf_footnote": rtf.RTFFootnote(text=[_text(f) for f in footnotes], text_font_size=_SIZE,
                                        text_convert=[False], as_table=as_table)
        if footnotes else None,
        "rtf_source": rtf.RTFSource(text=[_text(s) for s in source], text_font_size=_SIZE,
                                    text_convert=[False], text_justification=["l"],
                                    as_table=False),
    }


def render_table(body, headers: list[str], path: Path, *, title_lines: list[str],
                 footnotes: list[str], source: list[str], page_by: str | None = None,
                 widths: list[float] | None = None, align: list[str] | None = None) -> Path:
    """`body` (pandas, all text) as an RTF table at `path`."""
    if len(body) > CHUNK_ROWS:
        parts = []
        starts = range(0, len(body), CHUNK_ROWS)
        for k, start in enumerate(starts):
            part = path.with_name(f".{path.stem}.part{k:05d}.rtf")
            render_table(body.iloc[start:start + CHUNK_ROWS], headers, part,
                         title_lines=title_lines, footnotes=footnotes, source=source,
                         page_by=page_by, widths=widths, align=align)
            parts.append(part)
        with contextlib.redirect_stdout(io.StringIO()):
            rtf.assemble_rtf([str(p) for p in parts], str(path))
        for part in parts:
            part.unlink()
        return path
    cols = [c for c in body.columns if c != page_by]
    frame = body[[page_by, *cols] if page_by else cols].astype(str)
    frame = frame.map(_text)
    ncol = len(cols)
    rel = widths or ([3.0] + [1.0] * (ncol - 1) if ncol > 1 else [1.0])
    just = align or ["l"] + ["c"] * (ncol - 1)
    body_args = {"col_rel_width": ([1.0] + rel) if page_by else rel, "text_font_size": _SIZE,
                     "text_justification": [(["l"] + just) if page_by else just],
                     "text_convert": [[False] * (ncol + (1 if page_by else 0))]}
    if page_by:
        body_args.update(page_by=[page_by], pageby_row="first_row")
    doc = rtf.RTFDocument(
        df=pl.from_pandas(frame.reset_index(drop=True)),
        rtf_column_header=[rtf.RTFColumnHeader(text=[_text(h) for h in headers],
                                               col_rel_width=rel, text_font_size=_SIZE,
                                               text_justification=just,
                                               text_convert=[False])],
        rtf_body=rtf.RTFBody(**body_args),
        **_common(title_lines, footnotes, source))
    return _write(doc, path)


def render_figure(pngs: list[Path], path: Path, *, title_lines: list[str], footnotes: list[str],
                  source: list[str], width: float = 6.1, height: float = 3.5) -> Path:
    """The PNG figures, one per page, each under the title block with the footnotes; each
    scaled to fit the `width` x `height` inch box that leaves room for them on a landscape
    page, keeping its aspect."""
    widths, heights = [], []
    for png in pngs:
        with Image.open(png) as im:
            w, h = im.size
        scale = min(width / w, height / h)
        widths.append(round(w * scale, 2))
        heights.append(round(h * scale, 2))
    doc = rtf.RTFDocument(
        rtf_figure=rtf.RTFFigure(figures=[str(p) for p in pngs], fig_width=widths,
                                 fig_height=heights),
        # rtflite draws figure footnotes as text, not as a table row under a table
        **_common(title_lines, footnotes, source, as_table=False))
    return _write(doc, path)


def _write(doc: rtf.RTFDocument, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):   # rtflite prints every path it writes
        doc.write_rtf(str(path))
    return path
