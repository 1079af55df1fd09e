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

SOURCE_KEY = "SRCKEY"        # prefix of the pointed-to SDTM record's natural-key columns
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


def subject_text(s: pd.Series) -> np.ndarray:
    """Subject ids as plain text, so merges across datasets never compare two categoricals'
    differing categories."""
    return s.astype(str).to_numpy() if not isinstance(s.dtype, pd.CategoricalDtype) \
        else np.asarray(s.cat.categories.astype(str))[s.cat.codes.to_numpy()]


def _subject_values(s: pd.Series):
    return s.values if isinstance(s.dtype, pd.CategoricalDtype) else s.astype(str).to_numpy()


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
    if s.dtype.kind == "M":
        # A date read as a timestamp prints as the date; a date-time keeps its time.
        stamp = s.dt.strftime("%Y-%m-%dT%H:%M:%S")
        day = s.dt.strftime("%Y-%m-%d")
        text = np.where((s == s.dt.normalize()).to_numpy(), day.to_numpy(), stamp.to_numpy())
        return pd.Series(np.where(s.isna().to_numpy(), "", text).astype(object), index=s.index)
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
    """(USUBJID, seq) -> the natural-key columns of an SDTM dataset's records."""
    seq = next((c for c in frame.columns if is_sequence(c)), None)
    if seq is None or "USUBJID" not in frame.columns:
        return pd.DataFrame(columns=["USUBJID", "_SEQ"])
    natural = [k for k in keys if k not in ("STUDYID", "USUBJID")]
    out = pd.DataFrame({"USUBJID": frame["USUBJID"].astype(str).values
                        if not isinstance(frame["USUBJID"].dtype, pd.CategoricalDtype) else frame["USUBJID"].values,
                        "_SEQ": pd.to_numeric(frame[seq], errors="coerce").to_numpy()})
    for k in natural:
        out[k] = frame[k].values
    return out.drop_duplicates(["USUBJID", "_SEQ"])


def lookup(index: pd.DataFrame, subjects: np.ndarray, seqs: np.ndarray) -> np.ndarray:
    """Row of `index` (a record_index) for each (subject, sequence number); -1 if none."""
    ids = pd.Index(pd.unique(np.asarray(index["USUBJID"].to_numpy())))
    width = int(np.nanmax(index["_SEQ"].to_numpy(), initial=0)) + 2

    def combined(subj, seq):
        s = _positions(ids, subj)
        q = np.where(np.isnan(seq), -1, seq).astype(np.int64) + 1
        return np.where(s >= 0, s * width + q, -1)

    target = pd.Index(combined(index["USUBJID"].to_numpy(), index["_SEQ"].to_numpy(dtype=float)))
    key = combined(subjects, np.asarray(seqs, dtype=float))
    pos = target.get_indexer(key)
    return np.where(key >= 0, pos, -1)


def _positions(ids: pd.Index, values) -> np.ndarray:
    """ids.get_indexer(values), through the categories when values are categorical."""
    if isinstance(values, pd.Categorical):
        where = ids.get_indexer(values.categories).astype(np.int64)
        c = values.codes
        return np.where(c >= 0, where[np.maximum(c, 0)] if len(where) else -1, -1)
    return ids.get_indexer(values).astype(np.int64)


def take(values, pos: np.ndarray):
    """values[pos], missing where pos is -1 (categoricals stay categorical)."""
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return values.take(pos, allow_fill=True)
    arr = np.asarray(values)
    out = arr[np.maximum(pos, 0)]
    if arr.dtype.kind == "f":
        return np.where(pos >= 0, out, np.nan)
    out = out.astype(object)
    out[pos < 0] = None
    return out


def supp_with_parent_keys(supp: pd.DataFrame, parents: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """IDVARVAL of sequence-keyed qualifiers replaced by the parent's natural key text.
    `parents`: RDOMAIN -> record_index of the parent dataset."""
    if supp.empty or "IDVAR" not in supp.columns:
        return supp
    out = supp.copy()
    seq_vars = [v for v in pd.unique(out["IDVAR"].astype(object)) if isinstance(v, str) and is_sequence(v)]
    by_seq = out["IDVAR"].isin(seq_vars).to_numpy(dtype=bool)
    if not by_seq.any():
        return out
    values = out["IDVARVAL"].astype(object).to_numpy(copy=True)
    for rdomain in pd.unique(out.loc[by_seq, "RDOMAIN"]):
        idx = parents.get(str(rdomain))
        rows = np.flatnonzero(by_seq & (out["RDOMAIN"].to_numpy() == rdomain))
        if idx is None or idx.empty:
            continue
        probe = pd.DataFrame({"USUBJID": subject_text(out["USUBJID"])[rows],
                              "_SEQ": pd.to_numeric(out["IDVARVAL"].to_numpy()[rows], errors="coerce")})
        natural = [c for c in idx.columns if c not in ("USUBJID", "_SEQ")]
        if not natural:
            continue
        pos = lookup(idx, probe["USUBJID"].to_numpy(), probe["_SEQ"].to_numpy())
        hit = pd.DataFrame({c: take(idx[c].values, pos) for c in natural})
        found = text_key(hit, natural).where(pos >= 0).to_numpy()
        values[rows] = np.where(pd.isna(found), values[rows], found)
    out["IDVARVAL"] = values
    return out


def adam_keys(study: str, dataset: str, frame: pd.DataFrame,
              sdtm_index: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    """The frame (with the source record's natural-key columns, `SRC.<name>`, added when a
    sequence key points into SDTM) and its keys."""
    cols = list(frame.columns)
    spec = adam_spec_keys(study, dataset.upper())
    keys = list(spec) if spec else [k for k in ("STUDYID", "USUBJID", "PARAMCD") if k in cols]
    out_keys: list[str] = []
    sourced = False
    for k in keys:
        if not is_sequence(k):
            if k in cols:
                out_keys.append(k)
            continue
        if not sourced:
            frame, src_cols = _with_source_columns(frame, k, sdtm_index)
            sourced = True
            out_keys += [c for c in src_cols if c not in out_keys]
        if k == "ASEQ" or not src_cols:
            out_keys += [t for t in ADAM_TIMING if t in cols and t not in out_keys]
    if not spec:
        out_keys += [t for t in ADAM_TIMING if t in cols and t not in out_keys]
    return frame, out_keys


def _with_source_columns(frame: pd.DataFrame, key: str,
                         sdtm_index: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    if "SRCDOM" in frame.columns and "SRCSEQ" in frame.columns:
        dom = frame["SRCDOM"].astype(object).where(frame["SRCDOM"].notna(), "").to_numpy()
        seq = pd.to_numeric(frame["SRCSEQ"], errors="coerce").to_numpy()
        keys = ["SRCDOM"]
    elif key[:-3] in sdtm_index:                     # AESEQ -> AE
        dom = np.full(len(frame), key[:-3], dtype=object)
        seq = pd.to_numeric(frame[key], errors="coerce").to_numpy()
        keys = []
    else:
        return frame, []
    added: dict[str, object] = {}
    subj = _subject_values(frame["USUBJID"])
    domains = [d for d in pd.unique(dom) if d in sdtm_index and len(sdtm_index[d])]
    if len(domains) == 1 and (dom == domains[0]).all():
        # One source domain (ADLB <- LB): its key columns as they are (categoricals stay so).
        idx = sdtm_index[domains[0]]
        pos = lookup(idx, subj, seq)
        added = {f"{SOURCE_KEY}.{c}": take(idx[c].values, pos) for c in idx.columns
                 if c not in ("USUBJID", "_SEQ")}
        return frame.assign(**added), keys + sorted(added)
    for d in domains:
        idx = sdtm_index.get(d)
        if idx is None or len(idx) == 0:
            continue
        rows = np.flatnonzero(dom == d)
        pos = lookup(idx, subj[rows], seq[rows])
        hit = pd.DataFrame({c: take(idx[c].values, pos) for c in idx.columns if c not in ("USUBJID", "_SEQ")})
        for c in idx.columns:
            if c in ("USUBJID", "_SEQ"):
                continue
            name = f"{SOURCE_KEY}.{c}"
            if name not in added:
                added[name] = np.full(len(frame), None, dtype=object)
            added[name][rows] = hit[c].astype(object).to_numpy()
    frame = frame.assign(**added) if added else frame
    return frame, keys + sorted(added)
