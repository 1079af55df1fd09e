"""From an ARD row to the raw EDC record: ADaM record -> SRCDOM/SRCSEQ -> SDTM record ->
the SDTM build's trace (`sdtm/lineage/trace.parquet`) -> raw form and RECORDID.

`lineage.parquet` (one row per ARD row and record counted, outputs in catalogue order):

    OUTID ARDROW STAT USUBJID ADDSN ADSEQ SRCDOM SRCSEQ FORM RECORDID

ADDSN/ADSEQ: the ADaM dataset and its record (ASEQ, or AESEQ in ADAE; empty for ADSL, one
record per subject), or an SDTM domain and --SEQ where an output counts SDTM records that no
ADaM dataset holds (GLOCART cell collections from PR, SPD from TR); SRCDOM/SRCSEQ: the SDTM
record it was derived from (DM for ADSL; an ADaM source such as ADRS is followed one step
further); FORM/RECORDID: the raw record. Derived records with no single source (a best
overall response from several visits keeps the visit that decided it) show what their
SRCDOM/SRCSEQ say; empty where the ADaM record has none.

A 10,000-subject study links tens of millions of (row, record) pairs, so the records are
resolved once (`resolve_records`) and each output's links are written as integer indices into
dictionary-encoded columns, one parquet row group per output (`LineageWriter`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

LINEAGE_COLUMNS = ["OUTID", "ARDROW", "STAT", "USUBJID", "ADDSN", "ADSEQ", "SRCDOM", "SRCSEQ",
                   "FORM", "RECORDID"]
RECORD_COLUMNS = ["USUBJID", "ADDSN", "ADSEQ", "SRCDOM", "SRCSEQ", "FORM", "RECORDID"]
_SEQ = ("ASEQ", "AESEQ")
_TEXT = ("USUBJID", "ADDSN", "SRCDOM", "FORM", "RECORDID")


def _sources(ctx, name: str) -> pd.DataFrame:
    """USUBJID, ADSEQ -> SRCDOM, SRCSEQ of one ADaM dataset."""
    empty = pd.DataFrame({"USUBJID": pd.Series(dtype=str), "ADSEQ": pd.Series(dtype=float),
                          "SRCDOM": pd.Series(dtype=str), "SRCSEQ": pd.Series(dtype=float)})
    if name == "ADSL" or not ctx.has(name):
        return empty
    names = ctx.variables(name)
    seq = next((s for s in _SEQ if s in names), None)
    if seq is None or "SRCDOM" not in names:
        return empty
    df = ctx.dataset(name, ["USUBJID", seq, "SRCDOM", "SRCSEQ"])
    out = pd.DataFrame({"USUBJID": df["USUBJID"].astype(str), "ADSEQ": df[seq].astype(float),
                        "SRCDOM": df["SRCDOM"].fillna("").astype(str),
                        "SRCSEQ": pd.to_numeric(df["SRCSEQ"], errors="coerce").astype(float)})
    return out.drop_duplicates(["USUBJID", "ADSEQ"])


def resolve_records(ctx, records: pd.DataFrame, trace: pd.DataFrame | None) -> pd.DataFrame:
    """(USUBJID, ADDSN, ADSEQ) records -> RECORD_COLUMNS, same rows in the same order."""
    lin = records[["USUBJID", "ADDSN", "ADSEQ"]].reset_index(drop=True).copy()
    lin["SRCDOM"], lin["SRCSEQ"] = "", np.nan
    for name in sorted(lin["ADDSN"].unique()):
        m = (lin["ADDSN"] == name).to_numpy()
        if name == "ADSL":
            lin.loc[m, "SRCDOM"] = "DM"
        elif not name.startswith("AD"):
            # an SDTM record counted directly (no ADaM dataset holds it yet): its own source
            lin.loc[m, "SRCDOM"] = name
            lin.loc[m, "SRCSEQ"] = lin.loc[m, "ADSEQ"]
        else:
            src = lin.loc[m, ["USUBJID", "ADSEQ"]].merge(_sources(ctx, name),
                                                          on=["USUBJID", "ADSEQ"], how="left")
            lin.loc[m, "SRCDOM"] = src["SRCDOM"].fillna("").to_numpy()
            lin.loc[m, "SRCSEQ"] = src["SRCSEQ"].astype(float).to_numpy()
    from_adsl = lin["SRCDOM"] == "ADSL"     # a subject-level date: ADSL is built from DM
    lin.loc[from_adsl, "SRCDOM"] = "DM"
    lin.loc[from_adsl, "SRCSEQ"] = np.nan
    # an ADaM source (e.g. ADTTE from ADRS): one more step to its SDTM record
    for name in sorted(lin.loc[lin["SRCDOM"].str.startswith("AD"), "SRCDOM"].unique()):
        m = lin["SRCDOM"] == name
        hop = lin.loc[m, ["USUBJID", "SRCSEQ"]].merge(
            _sources(ctx, name).rename(columns={"ADSEQ": "SRCSEQ", "SRCDOM": "_D", "SRCSEQ": "_S"}),
            on=["USUBJID", "SRCSEQ"], how="left")
        lin.loc[m, "SRCDOM"] = hop["_D"].fillna("").to_numpy()
        lin.loc[m, "SRCSEQ"] = hop["_S"].astype(float).to_numpy()
    lin["FORM"], lin["RECORDID"] = "", ""
    if trace is not None and len(trace):
        tr = trace.rename(columns={"DOMAIN": "SRCDOM", "SEQ": "SRCSEQ"})
        tr = tr.drop_duplicates(["SRCDOM", "USUBJID", "SRCSEQ"])
        hit = lin[["SRCDOM", "USUBJID", "SRCSEQ"]].merge(tr, on=["SRCDOM", "USUBJID", "SRCSEQ"],
                                                          how="left")
        lin["FORM"] = hit["FORM"].fillna("").astype(str).to_numpy()
        lin["RECORDID"] = hit["RECORDID"].fillna("").astype(str).to_numpy()
    for col in _TEXT:
        lin[col] = lin[col].astype(str)
    return lin[RECORD_COLUMNS]


class LineageWriter:
    """Collects each output's links (tlf.ard.ard_lineage) and writes lineage.parquet once the
    records of every output are resolved together."""

    def __init__(self):
        self._parts: list[tuple[str, pd.DataFrame, pd.DataFrame]] = []

    def add(self, outid: str, links: pd.DataFrame, records: pd.DataFrame) -> None:
        self._parts.append((outid, links, records.rename(columns={"DATASET": "ADDSN",
                                                                   "RECSEQ": "ADSEQ"})))

    def write(self, ctx, trace: pd.DataFrame | None, path: Path) -> tuple[int, dict]:
        """Write `path`; returns (rows, {outid: per-output lineage frame for the trace pages,
        at most `shown` records per ARD row, plus the counts per row})."""
        keys = ["USUBJID", "ADDSN", "ADSEQ"]
        if self._parts:
            allrec = pd.concat([r[keys] for _, _, r in self._parts], ignore_index=True)
        else:
            allrec = pd.DataFrame({"USUBJID": pd.Series(dtype=str),
                                   "ADDSN": pd.Series(dtype=str),
                                   "ADSEQ": pd.Series(dtype=float)})
        allrec = allrec.drop_duplicates().sort_values(keys, kind="stable").reset_index(drop=True)
        resolved = resolve_records(ctx, allrec, trace)
        columns = {c: _dictionary(resolved[c]) if c in _TEXT else
                   pa.array(resolved[c].to_numpy(float)) for c in RECORD_COLUMNS}
        gid_of = allrec.assign(GID=np.arange(len(allrec), dtype=np.int64))
        stats = pa.array(sorted({s for _, lk, _ in self._parts for s in lk["STAT"]}), pa.string())
        schema = pa.schema([("OUTID", pa.dictionary(pa.int32(), pa.string())),
                            ("ARDROW", pa.int32()),
                            ("STAT", pa.dictionary(pa.int32(), pa.string())),
                            *[(c, columns[c].type) for c in RECORD_COLUMNS]])
        total, pages = 0, {}
        with pq.ParquetWriter(path, schema) as writer:
            for outid, links, records in self._parts:
                gid = records[keys].merge(gid_of, on=keys, how="left")["GID"].to_numpy()
                take = pa.array(gid[links["REC"].to_numpy()])
                n = len(links)
                stat_idx = pa.array(pd.Index(stats.to_pylist()).get_indexer(links["STAT"]),
                                    pa.int32())
                table = pa.table({
                    "OUTID": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)),
                                                            pa.array([outid])),
                    "ARDROW": pa.array(links["ARDROW"].to_numpy(np.int32)),
                    "STAT": pa.DictionaryArray.from_arrays(stat_idx, stats),
                    **{c: columns[c].take(take) for c in RECORD_COLUMNS}}, schema=schema)
                writer.write_table(table)
                total += n
                pages[outid] = _page_rows(links, gid, resolved)
        return total, pages


def _dictionary(values: pd.Series) -> pa.DictionaryArray:
    codes, uniques = pd.factorize(values.astype(str), sort=True)
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                          pa.array(list(uniques), pa.string()))


SHOWN = 50    # records per ARD row on the html trace page; `clinpipe trace` prints them all


def _page_rows(links: pd.DataFrame, gid: np.ndarray, resolved: pd.DataFrame) -> dict:
    """For the trace page: per ARD row the number of records and subjects, and the first
    SHOWN records (resolved)."""
    g = gid[links["REC"].to_numpy()]
    subjects = resolved["USUBJID"].to_numpy()[g]
    frame = pd.DataFrame({"ARDROW": links["ARDROW"].to_numpy(), "GID": g, "USUBJID": subjects})
    counts = frame.groupby("ARDROW").agg(records=("GID", "size"), subjects=("USUBJID", "nunique"))
    head = frame.groupby("ARDROW", sort=False).head(SHOWN)
    shown = resolved.iloc[head["GID"].to_numpy()].assign(ARDROW=head["ARDROW"].to_numpy())
    return {"counts": counts, "shown": shown.reset_index(drop=True)}


def read_trace(sdtm_dir: Path | None) -> pd.DataFrame | None:
    """The SDTM build's trace (sdtm.run.write_trace); None for SDTM this pipeline did not
    build (lineage then stops at the SDTM record)."""
    path = Path(sdtm_dir) / "lineage" / "trace.parquet" if sdtm_dir else None
    return pd.read_parquet(path) if path is not None and path.is_file() else None
