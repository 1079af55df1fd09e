"""From an ARD row to the raw EDC record: ADaM record -> SRCDOM/SRCSEQ -> SDTM record ->
the SDTM build's trace (`sdtm/trace.parquet`) -> raw form and RECORDID.

`lineage.parquet` (one row per ARD row and record counted):

    OUTID ARDROW STAT USUBJID ADDSN ADSEQ SRCDOM SRCSEQ FORM RECORDID

ADDSN/ADSEQ: the ADaM dataset and its record (ASEQ, or AESEQ in ADAE; empty for ADSL, one
record per subject), or an SDTM domain and --SEQ where an output counts SDTM records that no
ADaM dataset holds (GLOCART cell collections from PR, SPD from TR); SRCDOM/SRCSEQ: the SDTM record it was derived from (DM for ADSL; an
ADaM source such as ADRS is followed one step further); FORM/RECORDID: the raw record.
Derived records with no single source (a best overall response from several visits keeps
the visit that decided it) show what their SRCDOM/SRCSEQ say; empty where the ADaM record
has none.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

LINEAGE_COLUMNS = ["OUTID", "ARDROW", "STAT", "USUBJID", "ADDSN", "ADSEQ", "SRCDOM", "SRCSEQ",
                   "FORM", "RECORDID"]
_SEQ = ("ASEQ", "AESEQ")


def _sources(ctx, name: str) -> pd.DataFrame:
    """USUBJID, ADSEQ -> SRCDOM, SRCSEQ of one ADaM dataset."""
    if name == "ADSL":
        return pd.DataFrame(columns=["USUBJID", "ADSEQ", "SRCDOM", "SRCSEQ"])
    df = ctx.dataset(name)
    seq = next((s for s in _SEQ if s in df), None)
    if seq is None or "SRCDOM" not in df:
        return pd.DataFrame(columns=["USUBJID", "ADSEQ", "SRCDOM", "SRCSEQ"])
    out = pd.DataFrame({"USUBJID": df["USUBJID"].astype(str), "ADSEQ": df[seq].astype(float),
                        "SRCDOM": df["SRCDOM"].fillna("").astype(str),
                        "SRCSEQ": pd.to_numeric(df["SRCSEQ"], errors="coerce").astype(float)})
    return out.drop_duplicates(["USUBJID", "ADSEQ"])


def resolve_lineage(ctx, lineage: pd.DataFrame, trace: pd.DataFrame | None) -> pd.DataFrame:
    """Add SRCDOM/SRCSEQ and FORM/RECORDID to (OUTID, ARDROW, STAT, USUBJID, DATASET, RECSEQ)."""
    lin = lineage.rename(columns={"DATASET": "ADDSN", "RECSEQ": "ADSEQ"})
    lin = lin.reset_index(drop=True)
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
    lin["SRCDOM"] = lin["SRCDOM"].fillna("")
    # an ADaM source (e.g. ADTTE from ADRS): one more step to its SDTM record
    from_adsl = lin["SRCDOM"] == "ADSL"     # a subject-level date: ADSL is built from DM
    lin.loc[from_adsl, "SRCDOM"] = "DM"
    lin.loc[from_adsl, "SRCSEQ"] = np.nan
    adam_src = lin["SRCDOM"].str.startswith("AD")
    for name in sorted(lin.loc[adam_src, "SRCDOM"].unique()):
        if not ctx.has(name):
            continue
        m = lin["SRCDOM"] == name
        hop = lin.loc[m, ["USUBJID", "SRCSEQ"]].merge(
            _sources(ctx, name).rename(columns={"ADSEQ": "SRCSEQ", "SRCDOM": "_D", "SRCSEQ": "_S"}),
            on=["USUBJID", "SRCSEQ"], how="left")
        lin.loc[m, "SRCDOM"] = hop["_D"].fillna("").to_numpy()
        lin.loc[m, "SRCSEQ"] = hop["_S"].astype(float).to_numpy()
    if trace is not None and len(trace):
        tr = trace.rename(columns={"DOMAIN": "SRCDOM", "SEQ": "SRCSEQ"})
        tr = tr.drop_duplicates(["SRCDOM", "USUBJID", "SRCSEQ"])
        lin = lin.merge(tr, on=["SRCDOM", "USUBJID", "SRCSEQ"], how="left")
    for col in ("FORM", "RECORDID"):
        lin[col] = lin[col].fillna("").astype(str) if col in lin else ""
    lin["ADDSN"] = lin["ADDSN"].astype(str)
    out = lin[LINEAGE_COLUMNS].sort_values(["OUTID", "ARDROW", "USUBJID", "ADDSN", "ADSEQ"],
                                           kind="stable")
    return out.reset_index(drop=True)


def read_trace(sdtm_dir: Path | None) -> pd.DataFrame | None:
    if sdtm_dir is None or not (Path(sdtm_dir) / "trace.parquet").is_file():
        return None
    return pd.read_parquet(Path(sdtm_dir) / "trace.parquet")
