"""Natural keys that match one record across two transfers.

Sequence numbers (--SEQ, ASEQ, SRCSEQ) renumber whenever a record is added before another,
so no key here contains one:
- SDTM: the domain's `keys:` in the study's mapping specs (mappings/<STUDY>/sdtm, the
  SDTMIG natural key of the domain), STUDYID first; a Findings domain's --TESTCD is added
  when the spec leaves it out. Datasets the engine derives without a
  spec (SE, SV, trial design) use `DERIVED_SDTM_KEYS`.
- SUPP--: the parent record's natural key stands in for IDVARVAL when IDVAR is a sequence
  number, so a supplemental qualifier follows its parent record, not its number.
- ADaM: the spec's `keys:` (mappings/.../adam); a sequence key is replaced by the natural key
  of the SDTM record it points to (SRCDOM/SRCSEQ, or AESEQ into AE) in the same build, and
  ASEQ by the analysis timing variables the dataset has (`ADAM_TIMING`).
When the keys are still not unique within a transfer, records of one key are matched in
their order in the dataset (the n-th to the n-th); the report counts such key groups.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from clinpipe.errors import ClinpipeError

SOURCE_KEY = "SRCKEY"        # the pointed-to SDTM record's natural key, as text
# SDTM datasets the engine derives without a mapping spec: their SDTMIG natural keys.
DERIVED_SDTM_KEYS = {
    "SE": ("STUDYID", "USUBJID", "ETCD", "SESTDTC"),
    "SV": ("STUDYID", "USUBJID", "VISITNUM"),
    "TA": ("STUDYID", "ARMCD", "TAETORD"),
    "TE": ("STUDYID", "ETCD"),
    "TI": ("STUDYID", "IETESTCD"),
    "TS": ("STUDYID", "TSPARMCD", "TSGRPID"),
    "TV": ("STUDYID", "VISITNUM", "ARMCD"),
}
ADAM_TIMING = ("AVISITN", "ATPTN", "ADTM", "ADT", "ASTDTM", "ASTDT")
SUPP_KEYS = ("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM")


def is_sequence(name: str) -> bool:
    """A record number, not a fact: --SEQ, ASEQ, SRCSEQ."""
    return name.endswith("SEQ")


@cache
def sdtm_spec_keys(study: str) -> dict[str, tuple[str, ...]]:
    """Domain -> natural key from the study's SDTM specs (several spec files of one domain
    contribute their keys in order)."""
    from edc.forms import load_forms
    from sdtm.spec import load_specs

    specs = load_specs(study, load_forms(study))
    out: dict[str, tuple[str, ...]] = {}
    for domain, items in specs.items():
        keys: list[str] = ["STUDYID"]
        for spec in items:
            keys += [k for k in spec.keys if k not in keys]
        out[domain] = tuple(keys)
    return out


@cache
def adam_spec_keys(study: str, dataset: str) -> tuple[str, ...] | None:
    from adam.metadata import load_spec

    try:
        return tuple(load_spec(dataset, study).keys)
    except ClinpipeError:
        return None


def text_key(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    """"COL=value | COL=value" per row, vectorised (missing values as empty)."""
    if not cols:
        return pd.Series("", index=frame.index, dtype=object)
    parts = [col + "=" + as_text(frame[col]) for col in cols]
    out = parts[0]
    for p in parts[1:]:
        out = out + " | " + p
    return out


def as_text(s: pd.Series) -> pd.Series:
    """Values as text the way a reader writes them: whole floats without ".0", missing empty."""
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy(dtype=float)
        missing = np.isnan(v)
        whole = ~missing & (v == np.floor(v)) & (np.abs(v) < 2 ** 53)
        txt = np.where(whole, np.where(whole, v, 0).astype(np.int64).astype(str), v.astype(str))
        return pd.Series(np.where(missing, "", txt).astype(object), index=s.index)
    return s.astype(object).where(s.notna(), "").astype(str)


def sdtm_keys(study: str, dataset: str, columns: list[str]) -> list[str]:
    name = dataset.upper()
    if name.startswith("SUPP"):
        return [k for k in SUPP_KEYS if k in columns]
    keys = list(sdtm_spec_keys(study).get(name) or DERIVED_SDTM_KEYS.get(name) or ("STUDYID", "USUBJID"))
    # A Findings record is one test: SDTMIG's natural key of every Findings domain has --TESTCD,
    # so a spec whose keys leave it out (several tests share a date and time point) gets it.
    testcd = f"{name}TESTCD"
    if testcd in columns and testcd not in keys and _domain_class(name) == "Findings":
        keys.append(testcd)
    return [k for k in keys if k in columns]


@cache
def _domain_class(name: str) -> str:
    from sdtm import metadata

    try:
        return metadata.domain(name).cls
    except ClinpipeError:
        return ""


def record_index(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """(USUBJID, seq) -> natural-key text of an SDTM dataset's records."""
    seq = next((c for c in frame.columns if is_sequence(c)), None)
    if seq is None or "USUBJID" not in frame.columns:
        return pd.DataFrame(columns=["USUBJID", "_SEQ", SOURCE_KEY])
    natural = [k for k in keys if k not in ("STUDYID", "USUBJID")]
    return pd.DataFrame({"USUBJID": frame["USUBJID"].astype(str).to_numpy(),
                         "_SEQ": pd.to_numeric(frame[seq], errors="coerce").to_numpy(),
                         SOURCE_KEY: text_key(frame, natural).to_numpy()})


def supp_with_parent_keys(supp: pd.DataFrame, parents: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """IDVARVAL of sequence-keyed qualifiers replaced by the parent's natural key text.
    `parents`: RDOMAIN -> record_index of the parent dataset."""
    if supp.empty or "IDVAR" not in supp.columns:
        return supp
    out = supp.copy()
    by_seq = out["IDVAR"].astype(str).map(is_sequence).to_numpy(dtype=bool)
    if not by_seq.any():
        return out
    values = out["IDVARVAL"].astype(object).to_numpy(copy=True)
    for rdomain in pd.unique(out.loc[by_seq, "RDOMAIN"]):
        idx = parents.get(str(rdomain))
        rows = np.flatnonzero(by_seq & (out["RDOMAIN"].to_numpy() == rdomain))
        if idx is None or idx.empty:
            continue
        probe = pd.DataFrame({"USUBJID": out["USUBJID"].astype(str).to_numpy()[rows],
                              "_SEQ": pd.to_numeric(out["IDVARVAL"].to_numpy()[rows], errors="coerce")})
        found = probe.merge(idx.drop_duplicates(["USUBJID", "_SEQ"]), on=["USUBJID", "_SEQ"],
                            how="left")[SOURCE_KEY].to_numpy()
        values[rows] = np.where(pd.isna(found), values[rows], found)
    out["IDVARVAL"] = values
    return out


def adam_keys(study: str, dataset: str, frame: pd.DataFrame,
              sdtm_index: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    """The frame (with SOURCE_KEY added when a sequence key points into SDTM) and its keys."""
    cols = list(frame.columns)
    spec = adam_spec_keys(study, dataset.upper())
    keys = list(spec) if spec else [k for k in ("STUDYID", "USUBJID", "PARAMCD") if k in cols]
    out_keys: list[str] = []
    for k in keys:
        if not is_sequence(k):
            if k in cols:
                out_keys.append(k)
            continue
        if SOURCE_KEY not in frame.columns:
            frame = _with_source_key(frame, k, sdtm_index)
        if SOURCE_KEY in frame.columns and SOURCE_KEY not in out_keys:
            out_keys.append(SOURCE_KEY)
        if k == "ASEQ" or SOURCE_KEY not in frame.columns:
            out_keys += [t for t in ADAM_TIMING if t in cols and t not in out_keys]
    if not spec:
        out_keys += [t for t in ADAM_TIMING if t in cols and t not in out_keys]
    return frame, out_keys


def _with_source_key(frame: pd.DataFrame, key: str, sdtm_index: dict[str, pd.DataFrame]) -> pd.DataFrame:
    if "SRCDOM" in frame.columns and "SRCSEQ" in frame.columns:
        dom = frame["SRCDOM"].astype(object).where(frame["SRCDOM"].notna(), "").astype(str).to_numpy()
        seq = pd.to_numeric(frame["SRCSEQ"], errors="coerce").to_numpy()
    elif key[:-3] in sdtm_index:                     # AESEQ -> AE
        dom = np.full(len(frame), key[:-3], dtype=object)
        seq = pd.to_numeric(frame[key], errors="coerce").to_numpy()
    else:
        return frame
    probe = pd.DataFrame({"_DOM": dom, "USUBJID": frame["USUBJID"].astype(str).to_numpy(), "_SEQ": seq})
    parts = [idx.drop_duplicates(["USUBJID", "_SEQ"]).assign(_DOM=d) for d, idx in sdtm_index.items()
             if d in set(dom)]
    if not parts:
        return frame
    found = probe.merge(pd.concat(parts, ignore_index=True), on=["_DOM", "USUBJID", "_SEQ"],
                        how="left")[SOURCE_KEY]
    text = np.where(found.isna().to_numpy(), "", (probe["_DOM"] + ": ").to_numpy() + found.fillna("").to_numpy())
    return frame.assign(**{SOURCE_KEY: text})
