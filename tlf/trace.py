"""`clinpipe trace`: one ARD number -> its subjects, ADaM, SDTM and raw EDC records."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from clinpipe.errors import ClinpipeError
from clinpipe.paths import build_dir, study_out

_RAW_META = ("STUDYID", "SITEID", "FOLDERNAME", "FOLDERSEQ", "RECORDPOSITION", "RECORDACTIVE",
             "LASTMODIFIED")


class TraceError(ClinpipeError):
    """The output, row or lineage asked for does not exist."""


def lineage_of(study: str, outid: str, ardrow: int, out_root=None, transfer: str | None = None
               ) -> tuple[pd.Series, pd.DataFrame]:
    """(the ARD row, its lineage records) from out/<STUDY>/<TRANSFER>/tlf."""
    folder = study_out(study, "tlf", out_root, transfer)
    ard_path = folder / "ard" / f"{outid}.parquet"
    if not ard_path.is_file():
        raise TraceError(f"no ARD for output {outid}", file=ard_path,
                         hint=f"see {folder / 'index.csv'} for the output ids, or run "
                              f"`clinpipe tlf --study {study}`")
    ard = pd.read_parquet(ard_path)
    if not 1 <= ardrow <= len(ard):
        raise TraceError(f"output {outid} has ARD rows 1-{len(ard)}, not {ardrow}",
                         file=ard_path, hint="rows are numbered as on the output's trace page")
    lin = pd.read_parquet(folder / "lineage.parquet",
                          filters=[("OUTID", "==", outid), ("ARDROW", "==", ardrow)])
    return ard.iloc[ardrow - 1], lin.reset_index(drop=True)


def raw_records(study: str, lin: pd.DataFrame, out_root=None, transfer: str | None = None
                ) -> pd.DataFrame | None:
    """The raw form records behind the lineage (FORM, RECORDID), read from the transfer the
    SDTM was built from; None when that transfer is not on this machine."""
    manifest = study_out(study, "sdtm", out_root, transfer) / "manifest.json"
    if not manifest.is_file():
        return None
    transfer = json.loads(manifest.read_text(encoding="utf-8")).get("raw_transfer")
    if not transfer or not Path(transfer).is_dir():
        return None
    from edc.read import read_transfer

    raw = read_transfer(Path(transfer), study=study)
    wanted = lin.loc[lin["FORM"] != "", ["FORM", "RECORDID"]].drop_duplicates()
    parts = []
    for form, ids in wanted.groupby("FORM", observed=True)["RECORDID"]:
        frame = raw.frames.get(form)
        if frame is None:
            continue
        hit = frame[frame["RECORDID"].astype(str).isin(set(ids))]
        cols = [c for c in hit.columns if c not in _RAW_META and not c.endswith("_DEC")]
        parts.append(hit[cols].assign(FORM=form))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def trace_number(study: str, outid: str, ardrow: int, out_root=None, with_raw: bool = True,
                 transfer: str | None = None) -> str:
    """The trace of one number of one build (default: the newest build with TLF outputs)."""
    transfer = transfer or build_dir(study, out_root, layer="tlf").name
    row, lin = lineage_of(study, outid, ardrow, out_root, transfer)
    cell = ", ".join(f"{k}={row[k]}" for k in ("GRP1LVL", "GRP2LVL", "PARAMCD", "VARLVL",
                                                  "TIMEPT") if row[k])
    lines = [(f"{study} {outid} ARD row {ardrow}: {row['STAT']} = {row['STATC']}"
             f" ({cell or 'whole population'})"),
             f"{lin['USUBJID'].nunique()} subject(s), {len(lin)} ADaM record(s):"]
    if len(lin):
        shown = lin.assign(ADSEQ=_int_text(lin["ADSEQ"]), SRCSEQ=_int_text(lin["SRCSEQ"]))
        lines.append(shown[["USUBJID", "ADDSN", "ADSEQ", "SRCDOM", "SRCSEQ", "FORM", "RECORDID"]]
                     .to_string(index=False))
    if with_raw and len(lin):
        raw = raw_records(study, lin, out_root, transfer)
        if raw is None:
            lines.append("(raw transfer not found on this machine: raw records not shown)")
        elif len(raw):
            lines.append("raw EDC records:")
            for form, recs in raw.groupby("FORM", sort=True):
                lines.append(f"-- form {form}")
                lines.append(recs.drop(columns="FORM").dropna(axis=1, how="all")
                             .to_string(index=False, max_colwidth=30))
    return "\n".join(lines)


def _int_text(values: pd.Series) -> pd.Series:
    return values.map(lambda v: "" if pd.isna(v) else str(int(v)))
