"""The TLF index (csv + html) and one page per output tracing each number to its records."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from tlf.ard import CELL_KEYS
from tlf.lineage import SHOWN as SHOWN_RECORDS  # records per ARD row on a trace page

_CSS = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;vertical-align:top}"
        "th{background:#eee}details{margin:0}code{background:#f4f4f4}")


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{body}</body></html>\n")


def write_index(folder: Path, study: str, catalog, index: pd.DataFrame, cutoff: str,
                rid: str) -> None:
    index.to_csv(folder / "index.csv", index=False, lineterminator="\n")
    ends = {e.id: e for e in catalog.endpoints}
    rows = []
    for r in index.itertuples(index=False):
        links = " ".join(f"<a href='{html.escape(f)}'>{html.escape(Path(f).name)}</a>"
                         for f in r.FILES.split("; ") if f)
        eps = ", ".join(html.escape(f"{e} ({ends[e].endpoint})") for e in r.ENDPOINTS.split("; ")
                        if e)
        rows.append(f"<tr><td><a href='trace/{r.OUTID}.html'>{r.OUTID}</a></td>"
                    f"<td>{html.escape(r.TITLE)}</td><td>{html.escape(r.POPULATION)}</td>"
                    f"<td>{eps}</td><td>{links}</td></tr>")
    covered = {e for v in index["ENDPOINTS"] for e in v.split("; ") if e} if len(index) else set()
    ep_rows = "".join(
        f"<tr><td>{e.id}</td><td>{html.escape(e.endpoint)}</td><td>{e.kind}</td>"
        f"<td>{'yes' if e.id in covered else '<b>NO OUTPUT</b>'}</td></tr>"
        for e in catalog.endpoints)
    body = (f"<p>Data cut-off {html.escape(cutoff)}; run {rid}. Each output id opens the page "
            "that traces every number to its subjects and records.</p>"
            "<table><tr><th>Output</th><th>Title</th><th>Population</th><th>Endpoints</th>"
            f"<th>Files</th></tr>{''.join(rows)}</table>"
            "<h2>Registration endpoints</h2><table><tr><th>Id</th><th>Endpoint</th><th>Kind</th>"
            f"<th>Has an output</th></tr>{ep_rows}</table>")
    (folder / "index.html").write_text(_page(f"{study}: tables, figures and listings", body),
                                       encoding="utf-8")


def write_trace_pages(folder: Path, study: str, ards: dict[str, pd.DataFrame],
                      pages: dict[str, dict]) -> None:
    """trace/<id>.html: each ARD row with its subject and record counts and the first records
    (`pages` from tlf.lineage.LineageWriter.write)."""
    out = folder / "trace"
    out.mkdir(parents=True, exist_ok=True)
    for outid, ard in ards.items():
        page = pages.get(outid, {})
        counts = page.get("counts", pd.DataFrame(columns=["records", "subjects"]))
        shown = page.get("shown")
        per_row = dict(tuple(shown.groupby("ARDROW", sort=False))) if shown is not None else {}
        rows = []
        for k, r in enumerate(ard.itertuples(index=False), 1):
            cell = " / ".join(str(getattr(r, c)) for c in CELL_KEYS if getattr(r, c))
            detail = ""
            if k in counts.index:
                n_rec, n_subj = int(counts.loc[k, "records"]), int(counts.loc[k, "subjects"])
                lines = "".join(
                    f"<tr><td>{html.escape(x.USUBJID)}</td><td>{x.ADDSN} {_seq(x.ADSEQ)}</td>"
                    f"<td>{x.SRCDOM} {_seq(x.SRCSEQ)}</td><td>{html.escape(x.FORM)} "
                    f"{html.escape(x.RECORDID)}</td></tr>"
                    for x in per_row[k].itertuples(index=False))
                more = (f"<p>{n_rec - SHOWN_RECORDS} more: <code>clinpipe trace --study "
                        f"{study} --output {outid} --row {k}</code></p>"
                        if n_rec > SHOWN_RECORDS else "")
                detail = (f"<details><summary>{n_subj} subject(s), {n_rec} record(s)</summary>"
                          "<table><tr><th>USUBJID</th><th>ADaM record</th><th>SDTM record</th>"
                          f"<th>raw form record</th></tr>{lines}</table>{more}</details>")
            rows.append(f"<tr id='r{k}'><td>{k}</td><td>{html.escape(cell)}</td>"
                        f"<td>{r.STAT}</td><td>{html.escape(r.STATC)}</td><td>{html.escape(r.TIMEPT)}"
                        f"</td><td>{detail}</td></tr>")
        body = ("<p><a href='../index.html'>index</a> &middot; "
                f"<a href='../{outid}.rtf'>{outid}.rtf</a></p><table><tr><th>ARD row</th>"
                "<th>cell</th><th>STAT</th><th>printed</th><th>TIMEPT</th><th>records</th></tr>"
                f"{''.join(rows)}</table>")
        (out / f"{outid}.html").write_text(_page(f"{study} {outid}: numbers and their records",
                                                 body), encoding="utf-8")


def _seq(value) -> str:
    return "" if pd.isna(value) else str(int(value))
