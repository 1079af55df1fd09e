"""Analysis results data (ARD): the one long frame every TLF output is built from.

The contract (README, "Analysis results data"): one row per number, columns

    OUTID POP GRP1 GRP1LVL GRP2 GRP2LVL PARAMCD VARLVL STAT STATVAL STATC UNIT TIMEPT METHOD

all character except STATVAL (the unrounded number; NaN where not estimable, STATC then
says "NE"). STAT comes from one fixed vocabulary (`STATS`). A row is identified by its
position (ARDROW, 1-based) in the written file; lineage.parquet refers to rows that way.

An analysis returns its ARD together with its *members*: the ADaM records behind each cell
(`MEMBER_COLUMNS`). A cell is the key (GRP1, GRP1LVL, GRP2, GRP2LVL, PARAMCD, VARLVL); a
member's ROLE says which statistics of its cell counted it:

- ``num``: counted in ``n`` / ``events`` (and so in ``pct``, ``lcl``, ``ucl``);
- ``cens``: counted in ``censored`` (and in a time-to-event cell's ``n``, subjects analysed);
- ``den``: in the denominator ``N`` only.

Every other statistic (mean, km_median, km_rate, ...) is computed from all members of its
cell. ``pct``/``lcl``/``ucl`` trace to the numerator; the denominator is the ``N`` row's.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.parquet as pq

from sdtm.xpt import write_xpt

ARD_COLUMNS = ["OUTID", "POP", "GRP1", "GRP1LVL", "GRP2", "GRP2LVL", "PARAMCD", "VARLVL",
               "STAT", "STATVAL", "STATC", "UNIT", "TIMEPT", "METHOD"]
ARD_LABELS = {
    "OUTID": "Output Identifier",
    "POP": "Analysis Population",
    "GRP1": "Grouping Variable 1",
    "GRP1LVL": "Grouping Variable 1 Level",
    "GRP2": "Grouping Variable 2",
    "GRP2LVL": "Grouping Variable 2 Level",
    "PARAMCD": "Parameter Code",
    "VARLVL": "Variable or Category Level",
    "STAT": "Statistic",
    "STATVAL": "Statistic Value (Unrounded)",
    "STATC": "Statistic Value as Printed",
    "UNIT": "Unit of Statistic Value",
    "TIMEPT": "Landmark Time Point (Months)",
    "METHOD": "Statistical Method",
}
CELL_KEYS = ["GRP1", "GRP1LVL", "GRP2", "GRP2LVL", "PARAMCD", "VARLVL"]
STATS = ("n", "N", "pct", "lcl", "ucl", "mean", "sd", "cv", "geomean", "geocv", "median", "q1",
         "q3", "min", "max", "events", "censored", "km_median", "km_median_lcl", "km_median_ucl",
         "km_rate", "km_rate_lcl", "km_rate_ucl")
# which members each statistic counted (see the module docstring); others: the whole cell
STAT_ROLES = {"n": ("num", "cens"), "events": ("num",), "pct": ("num",), "lcl": ("num",),
              "ucl": ("num",), "censored": ("cens",), "N": ("den",)}
MEMBER_COLUMNS = [*CELL_KEYS, "ROLE", "USUBJID", "DATASET", "RECSEQ"]
ROLES = ("num", "cens", "den")

_TEXT = pa.Column(str, nullable=False)
_SPECIAL = {"STAT": pa.Column(str, pa.Check.isin(STATS), nullable=False),
            "STATVAL": pa.Column(float, nullable=True),
            "OUTID": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False)}
ARD_SCHEMA = pa.DataFrameSchema({c: _SPECIAL.get(c, _TEXT) for c in ARD_COLUMNS},
                                strict=True, ordered=True, name="ARD")


def finish_ard(ard: pd.DataFrame) -> pd.DataFrame:
    """Column order, types and '' for missing text: the frame as the contract says."""
    out = pd.DataFrame({c: ard.get(c, "" if c != "STATVAL" else np.nan)
                        for c in ARD_COLUMNS}, index=ard.index)
    for col in ARD_COLUMNS:
        if col == "STATVAL":
            out[col] = pd.to_numeric(out[col], errors="raise").astype(float)
        else:
            out[col] = out[col].where(out[col].notna(), "").astype(str)
    return out.reset_index(drop=True)


def finish_members(members: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({c: members.get(c, "" if c != "RECSEQ" else np.nan)
                        for c in MEMBER_COLUMNS}, index=members.index)
    for col in MEMBER_COLUMNS:
        if col == "RECSEQ":
            out[col] = pd.to_numeric(out[col]).astype(float)
        else:
            out[col] = out[col].where(out[col].notna(), "").astype(str)
    return out.drop_duplicates().reset_index(drop=True)


def check_ard(ard: pd.DataFrame, outid: str) -> pd.DataFrame:
    """The contract, enforced: a wrong column, type or STAT is an error naming the output."""
    try:
        return ARD_SCHEMA.validate(ard, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.head(5).to_dict("records")
        raise ValueError(f"ARD of output {outid} breaks the contract: {cases}") from None


def ard_lineage(ard: pd.DataFrame, members: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per ARD row (ARDROW, 1-based), the member records it counted (see STAT_ROLES), as
    integer links: (`links`: ARDROW, STAT, REC) into (`records`: USUBJID, DATASET, RECSEQ,
    one row per distinct record). Cells and records are numbered once and joined as integers:
    a 10,000-subject output links millions of records, which as rows of strings would cost
    gigabytes."""
    members = members.reset_index(drop=True)
    cells = pd.concat([ard[CELL_KEYS], members[CELL_KEYS]], ignore_index=True)
    cid = cells.groupby(CELL_KEYS, sort=False).ngroup().to_numpy()
    rec_keys = ["USUBJID", "DATASET", "RECSEQ"]
    records = (members[rec_keys].drop_duplicates().sort_values(rec_keys, kind="stable")
               .reset_index(drop=True))
    rec = members[rec_keys].merge(records.assign(REC=np.arange(len(records))), on=rec_keys,
                                  how="left")["REC"].to_numpy()
    rows = pd.DataFrame({"ARDROW": np.arange(1, len(ard) + 1, dtype=np.int32),
                         "CID": cid[:len(ard)], "STAT": ard["STAT"].to_numpy()})
    roles = pd.DataFrame([(s, r) for s in STATS for r in STAT_ROLES.get(s, ROLES)],
                         columns=["STAT", "ROLE"])
    mem = pd.DataFrame({"CID": cid[len(ard):], "ROLE": members["ROLE"].to_numpy(),
                        "REC": rec.astype(np.int32)}).drop_duplicates()
    links = rows.merge(roles, on="STAT").merge(mem, on=["CID", "ROLE"])
    links = (links[["ARDROW", "STAT", "REC"]].drop_duplicates()
             .sort_values(["ARDROW", "REC"], kind="stable").reset_index(drop=True))
    return links, records


def write_ard(ard: pd.DataFrame, outid: str, title: str, folder: Path) -> dict[str, Path]:
    """`<folder>/<outid>.xpt` (XPT v5, dataset ARD) and `.parquet`, byte-stable."""
    folder.mkdir(parents=True, exist_ok=True)
    label = title if len(title) <= 40 else title[:37].rstrip() + "..."
    xpt = write_xpt(ard, folder / f"{outid}.xpt", "ARD", _ascii(label), ARD_LABELS,
                    timestamp=dt.datetime(1960, 1, 1))
    table = pa_arrow.Table.from_pandas(ard, preserve_index=False)
    parquet = folder / f"{outid}.parquet"
    pq.write_table(table.replace_schema_metadata(None), parquet)
    return {"xpt": xpt, "parquet": parquet}


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")
