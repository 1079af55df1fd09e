"""Cross-dataset SDTM conformance rules: a registry of small, vectorised checks.

Each rule is data (id, severity, description, the public rule or guidance it mirrors, the
datasets it needs) plus one function `(datasets, study) -> findings`. `run_rules` runs them
all; a rule whose datasets are absent is skipped, and a missing variable gives a NOTICE, so
a partial delivery is still validated as far as it can be.

Rule ids are this project's own (`XR###`); `mirrors` names the SDTMIG 3.4 section or FDA
Study Data Technical Conformance Guide (TCG) requirement the rule implements, by name.

The rules work on Arrow text (pyarrow compute kernels, numpy masks): a column's stripped
text, its dates and its numbers are computed once per `run_rules` call and shared by the
rules; dates and numbers are parsed once per distinct value; cross-dataset rules look their
few key columns up in the other dataset (`_match`) instead of merging frames. Char columns may
come as Arrow-backed strings (the validation's normalised input) or as Python objects.
"""
from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sdtm.dates import to_datetime
from sdtm.validate.findings import findings_frame, make_findings

Datasets = dict[str, pd.DataFrame]
MAX_BYTES = 200
# Trial-design and relationship datasets carry no subject records of their own.
_NON_SUBJECT = {"TA", "TE", "TV", "TI", "TS", "TD", "TM", "RELREC"}
# Datasets whose records may legitimately be dated after death: disposition and survival
# follow-up record the death itself or contacts about it.
_AFTER_DEATH_OK = {"DM", "DS", "SS"}
# Trial Summary parameters the FDA expects in every submission (TCG, Trial Summary section;
# the FDA's TS parameter list). Conditional ones (e.g. OUTMSSEC, NCOHORT, PDPSTIND) are not
# enforced here because their need depends on the design.
TS_REQUIRED = (
    "ACTSUB", "ADAPT", "ADDON", "AGEMAX", "AGEMIN", "COMPTRT", "CURTRT", "DCUTDESC", "DCUTDTC",
    "EXTTIND", "FCNTRY", "HLTSUBJI", "INDIC", "INTMODEL", "INTTYPE", "LENGTH", "NARMS",
    "OBJPRIM", "PCLAS", "PLANSUB", "RANDOM", "REGID", "SDTIGVER", "SDTMVER", "SENDTC",
    "SEXPOP", "SPONSOR", "SSTDTC", "STOPRULE", "STYPE", "TBLIND", "TCNTRL", "TDIGRP",
    "THERAREA", "TINDTP", "TITLE", "TPHASE", "TRT", "TTYPE",
)
_STR = pa.large_string()          # what pandas' string[pyarrow] holds
_NAT = np.datetime64("NaT", "ns")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    description: str
    mirrors: str
    needs: tuple[str, ...]
    check: Callable[[Datasets, object], pd.DataFrame]


# ---------------------------------------------------------------- column values, once per run

# (kind, id(frame), column) -> (frame, value) while `run_rules` runs; None outside it, where
# each call computes (a rule called on its own).
_RUN: contextvars.ContextVar[dict | None] = contextvars.ContextVar("sdtm_rules_run", default=None)


def _once(kind: str, df: pd.DataFrame, col: str, compute: Callable):
    cache = _RUN.get()
    if cache is None:
        return compute()
    key = (kind, id(df), col)
    if key not in cache:
        # the frame is held beside its value so no other frame can take its id during the run
        cache[key] = (df, compute())
    return cache[key][1]


def _blank(n: int) -> pa.Array:
    return pc.fill_null(pa.nulls(n, _STR), "")


def _array(values) -> pa.Array | pa.ChunkedArray:
    return pa.array(values, type=_STR, from_pandas=True)


def _filled_text(s: pd.Series) -> pa.Array | pa.ChunkedArray:
    """`s.fillna('').astype(str)` as Arrow text: straight from Arrow (or from the Python
    strings) for a text column; other columns through their distinct values, so a number
    prints as pandas prints it ('1.0')."""
    if isinstance(s.dtype, pd.StringDtype):
        # as it is, in its chunks (combining them would copy every string)
        raw = s.array._pa_array if s.dtype.storage == "pyarrow" else s.array
        arr = raw.cast(_STR) if isinstance(raw, pa.ChunkedArray) else _array(raw)
    elif s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        arr = _array(s.to_numpy())
    else:
        values = s.to_numpy()
        if values.dtype.kind == "f":
            # on the bits, so -0.0 keeps its own text ('-0.0') beside 0.0
            codes, bits = pd.factorize(values.view(f"i{values.itemsize}"))
            uniques = pd.Series(bits.view(values.dtype))
        else:
            codes, uniques = pd.factorize(s, use_na_sentinel=False)
        text = pd.Series(uniques).fillna("").astype(str)
        arr = _array(text.to_numpy(dtype=object)).take(codes)
    return pc.fill_null(arr, "") if arr.null_count else arr


def _text(df: pd.DataFrame, col: str) -> pa.Array | pa.ChunkedArray:
    """A column as stripped text ('' for missing or absent), so blanks compare uniformly."""
    if col not in df:
        return _blank(len(df))

    def strip():
        text = _filled_text(df[col])
        trimmed = pc.utf8_trim_whitespace(text)
        # Most columns have no blanks to strip (XPT drops trailing ones): the run then keeps
        # the column's own buffers instead of a copy.
        same = pc.all(pc.equal(pc.binary_length(trimmed), pc.binary_length(text))).as_py()
        return text if same else trimmed
    return _once("text", df, col, strip)


def _encode(arr) -> tuple[pa.Array, np.ndarray]:
    """The distinct values of a text column and each row's index into them (int64)."""
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        if enc.num_chunks == 0:
            return pa.array([], _STR), np.zeros(0, dtype=np.int64)
        enc = enc.unify_dictionaries()
        return enc.chunk(0).dictionary, np.concatenate(
            [c.indices.to_numpy(zero_copy_only=False) for c in enc.chunks]).astype(np.int64)
    return enc.dictionary, enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _distinct(arr) -> tuple[pd.Series, np.ndarray]:
    """The distinct values (as a Series of Python strings) and each row's index into them."""
    values, idx = _encode(arr)
    return pd.Series(values.to_numpy(zero_copy_only=False), dtype=object), idx


def _dates(df: pd.DataFrame, col: str) -> np.ndarray:
    """The date part of a full ISO date column as datetime64[ns] (NaT otherwise), each
    distinct date part parsed once (times are ignored, so there are few)."""
    def parse():
        values, idx = _distinct(pc.utf8_slice_codeunits(_text(df, col), 0, 10))
        return to_datetime(values).to_numpy(dtype="datetime64[ns]")[idx]
    return _once("dates", df, col, parse)


def _numbers(df: pd.DataFrame, col: str) -> np.ndarray:
    """`pd.to_numeric` of the stripped text (NaN where not a number), once per distinct value."""
    def parse():
        values, idx = _distinct(_text(df, col))
        return np.asarray(pd.to_numeric(values, errors="coerce"), dtype="float64")[idx]
    return _once("numbers", df, col, parse)


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    """A numeric variable as float64, NaN for missing (text coerced as pandas does)."""
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _key_of(text: pd.Series) -> pd.Series:
    """Numbers by value, not by their text: 1.2000000000000002 (binary noise of a SAS numeric
    written elsewhere) and 1.2 are one VISITNUM, '1' and 1.0 one --SEQ (12 significant digits)."""
    num = pd.to_numeric(text, errors="coerce")
    shown = num.map(lambda x: repr(float(f"{x:.12g}")), na_action="ignore")
    return text.where(num.isna(), shown)


def _key(df: pd.DataFrame, col: str) -> pa.Array:
    """Join key that makes 1.0 (a numeric --SEQ) and '1' (its IDVARVAL text) equal."""
    def build():
        values, idx = _distinct(_text(df, col))
        return _array(_key_of(values).to_numpy(dtype=object)).take(idx)
    return _once("key", df, col, build)


def _np(arr) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def _is(arr: pa.Array, value) -> np.ndarray:
    return _np(pc.equal(arr, value))


def _isin(arr: pa.Array, values) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif not isinstance(values, pa.Array):
        values = pa.array(list(values), type=_STR)
    return _np(pc.is_in(arr, value_set=values.cast(_STR)))


def _filled(arr: pa.Array) -> np.ndarray:
    return _np(pc.not_equal(arr, ""))


def _at(arr: pa.Array, rows: np.ndarray) -> pa.Array:
    if len(rows) == len(arr) and (not len(rows) or (rows[0] == 0 and (np.diff(rows) == 1).all())):
        return arr          # every row in order: no copy
    return arr.take(pa.array(rows, type=pa.int64()))


_DENSE = 1 << 22     # combined key spaces up to this size are looked up in a table, not sorted


def _match(left: list, right: list) -> np.ndarray:
    """For each row of the `left` key columns, the position of the first `right` row with the
    same keys, or -1: a left join on the few key columns a rule needs, never on frames."""
    n, n_right = len(left[0]), len(right[0])
    if n_right == 0:
        return np.full(n, -1, dtype=np.int64)
    found = np.ones(n, dtype=bool)
    lk = rk = None
    size = 1
    for lcol, rcol in zip(left, right):
        values = pc.unique(rcol)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        li = pc.index_in(lcol, value_set=values)
        found &= _np(pc.is_valid(li))
        lc = _np(pc.fill_null(li, 0)).astype(np.int64)
        rc = _np(pc.index_in(rcol, value_set=values)).astype(np.int64)
        if lk is None:
            lk, rk, size = lc, rc, len(values)
            continue
        lk, rk = lk * len(values) + lc, rk * len(values) + rc
        # re-number the combined keys densely, so several key columns cannot overflow int64
        if size * len(values) <= _DENSE:
            present = np.zeros(size * len(values), dtype=bool)
            present[rk] = True
            dense = np.cumsum(present) - 1
            found &= present[lk]
            lk, rk, size = dense[lk], dense[rk], int(present.sum())
        else:
            seen, rk = np.unique(rk, return_inverse=True)
            pos = np.minimum(np.searchsorted(seen, lk), len(seen) - 1)
            found &= seen[pos] == lk
            lk, size = pos, len(seen)
    first = np.full(size, n_right, dtype=np.int64)
    np.minimum.at(first, rk, np.arange(n_right))
    return np.where(found, first[np.where(found, lk, 0)], -1)


def _notice(rule: str, dataset: str, variables: list[str], why: str) -> pd.DataFrame:
    return findings_frame([{
        "RULE": rule, "SEVERITY": "NOTICE", "DATASET": dataset, "USUBJID": "", "SEQ": np.nan,
        "VARIABLE": ",".join(variables), "VALUE": "",
        "MESSAGE": f"{rule} not checked on {dataset}: {', '.join(variables)} absent ({why})"}])


def _missing(rule: str, dataset: str, df: pd.DataFrame, cols: list[str], why: str):
    """A NOTICE when `df` has records but lacks a variable the rule needs; None when complete.
    An empty, column-less dataset says nothing, so it gets no notice either."""
    absent = [c for c in cols if c not in df]
    if not absent:
        return None
    return _notice(rule, dataset, absent, why) if len(df) else findings_frame()


def _first(*notices):
    """The first of several `_missing` results that is not None (frames have no truth value)."""
    return next((n for n in notices if n is not None), None)


def _concat(parts) -> pd.DataFrame:
    parts = [p for p in parts if p is not None and len(p)]
    return pd.concat(parts, ignore_index=True) if parts else findings_frame()


def _find(rule: str, severity: str, name: str, df: pd.DataFrame, rows: np.ndarray, variable: str,
          message) -> pd.DataFrame | None:
    """Findings for the `rows` of `df` (a mask or positions), None for no rows (most checks
    find nothing, and an empty frame costs more than the check). Only the columns a finding
    reads are taken, never the whole record; `message` is one text or one per flagged row."""
    rows = np.flatnonzero(rows) if rows.dtype == bool else rows
    if not len(rows):
        return None
    cols = [c for c in dict.fromkeys(("USUBJID", f"{name}SEQ", variable)) if c in df]
    if df.columns.is_unique:
        records = df.iloc[rows, df.columns.get_indexer(cols)]
    else:
        records = df.iloc[rows][cols]
    if not isinstance(message, str):
        arrow = isinstance(message, (pa.Array, pa.ChunkedArray))
        values = _np(message) if arrow else np.asarray(message, dtype=object)
        message = pd.Series(values, index=records.index, dtype=object)
    return make_findings(rule, severity, name, records, variable, message)


def _concat_text(*parts) -> pa.Array:
    """Element-wise concatenation of Arrow text arrays and plain strings (a message per row)."""
    parts = [pa.scalar(p, _STR) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*parts, pa.scalar("", _STR))


def _prefix(name: str) -> str:
    return name[:2]


def _subject_datasets(ds: Datasets, with_cols=()) -> dict[str, pd.DataFrame]:
    """Subject-level general-observation datasets (not DM, SUPP--, RELREC, trial design)."""
    return {n: df for n, df in ds.items()
            if n != "DM" and not n.startswith("SUPP") and n not in _NON_SUBJECT
            and "USUBJID" in df and all(c in df for c in with_cols)}


def _dm_rows(ds: Datasets, df: pd.DataFrame) -> np.ndarray:
    """For each record of `df`, DM's first record of its subject (by USUBJID text), or -1."""
    dm = ds["DM"]
    if "USUBJID" not in dm:
        return np.full(len(df), -1, dtype=np.int64)
    return _once("dm_rows", df, "USUBJID",
                 lambda: _match([_text(df, "USUBJID")], [_text(dm, "USUBJID")]))


def _dm_dates(ds: Datasets, df: pd.DataFrame, col: str) -> np.ndarray:
    """DM.`col` (date part) of each record's subject; NaT without one."""
    rows = _dm_rows(ds, df)
    return np.where(rows >= 0, _dates(ds["DM"], col)[np.maximum(rows, 0)], _NAT)


def _ymd(dates: np.ndarray) -> np.ndarray:
    return np.asarray(pd.Series(dates).dt.strftime("%Y-%m-%d").fillna(""), dtype=object)


# ---------------------------------------------------------------- subjects and arms

def usubjid_in_dm(ds: Datasets, study=None) -> pd.DataFrame:
    """Every subject record (including SUPP--) belongs to a subject in DM."""
    known = pc.unique(_text(ds["DM"], "USUBJID")) if "USUBJID" in ds["DM"] else pa.array([], _STR)
    parts = []
    for name, df in ds.items():
        if name == "DM" or name in _NON_SUBJECT or "USUBJID" not in df:
            continue
        subj = _text(df, "USUBJID")
        parts.append(_find("XR001", "ERROR", name, df, _filled(subj) & ~_isin(subj, known), "USUBJID",
                           "USUBJID is not a subject in DM"))
    return _concat(parts)


def screen_failure_not_exposed(ds: Datasets, study=None) -> pd.DataFrame:
    dm, ex = ds["DM"], ds["EX"]
    miss = _missing("XR002", "DM", dm, ["USUBJID", "ARMNRS"], "screen failures unknown")
    if miss is not None:
        return miss
    failed = _text(dm, "USUBJID").filter(pc.equal(_text(dm, "ARMNRS"), "SCREEN FAILURE"))
    exposed = _isin(_text(ex, "USUBJID"), failed)
    return _concat([_find("XR002", "ERROR", "EX", ex, exposed, "USUBJID",
                          "screen failure (DM.ARMNRS = SCREEN FAILURE) has an exposure record")])


def _exposure_bound(ds: Datasets, rule: str, dm_var: str, ex_vars: list[str], latest: bool):
    """DM.`dm_var` (date part) against the earliest/latest full EX date of `ex_vars`
    (the first present of them per record), for subjects with EX records; a DM value for a
    subject without exposure is also wrong (SDTMIG: RFX dates are exposure dates)."""
    dm, ex = ds["DM"], ds["EX"]
    miss = _first(_missing(rule, "DM", dm, ["USUBJID", dm_var], "reference dates absent"),
                  _missing(rule, "EX", ex, ["USUBJID", ex_vars[0]], "exposure dates absent"))
    if miss is not None:
        return miss
    dates = _dates(ex, ex_vars[0])
    for fallback in ex_vars[1:]:
        dates = np.where(np.isnat(dates), _dates(ex, fallback), dates)
    # the bound per subject on int64 nanoseconds: NaT is the smallest, so it loses a max and
    # is moved to the top to lose a min; a subject whose dates are all NaT keeps NaT
    subjects, codes = _encode(_text(ex, "USUBJID"))
    ns = dates.view(np.int64)
    nat = np.iinfo(np.int64).min
    if latest:
        bound = np.full(len(subjects), nat, dtype=np.int64)
        np.maximum.at(bound, codes, ns)
    else:
        top = np.iinfo(np.int64).max
        bound = np.full(len(subjects), top, dtype=np.int64)
        np.minimum.at(bound, codes, np.where(ns == nat, top, ns))
        bound[bound == top] = nat
    subj = pc.index_in(_text(dm, "USUBJID"), value_set=subjects)
    exposed = _np(pc.is_valid(subj))
    expected = np.where(exposed, bound.view("datetime64[ns]")[_np(pc.fill_null(subj, 0))], _NAT)
    actual = _dates(dm, dm_var)
    wrong_date = ~np.isnat(expected) & (actual != expected)
    no_ex = _filled(_text(dm, dm_var)) & ~exposed
    bad = np.flatnonzero(wrong_date | no_ex)
    word = "latest EX end" if latest else "earliest EX start"
    msg = np.where(no_ex[bad], f"{dm_var} is populated but the subject has no EX records",
                   f"{dm_var} is not the {word} date (" + _ymd(expected[bad]) + ")")
    return _concat([_find(rule, "ERROR", "DM", dm, bad, dm_var, msg)])


def rfxstdtc_first_exposure(ds: Datasets, study=None) -> pd.DataFrame:
    return _exposure_bound(ds, "XR003", "RFXSTDTC", ["EXSTDTC"], latest=False)


def rfxendtc_last_exposure(ds: Datasets, study=None) -> pd.DataFrame:
    # A single-day administration may leave EXENDTC empty: its start is then its end.
    return _exposure_bound(ds, "XR004", "RFXENDTC", ["EXENDTC", "EXSTDTC"], latest=True)


def arm_codes_in_ta(ds: Datasets, study=None) -> pd.DataFrame:
    dm, ta = ds["DM"], ds["TA"]
    miss = _missing("XR020", "TA", ta, ["ARMCD"], "planned arms unknown")
    if miss is not None:
        return miss
    arms = pc.unique(_text(ta, "ARMCD"))
    parts = []
    for var in ("ARMCD", "ACTARMCD"):
        code = _text(dm, var)
        parts.append(_find("XR020", "ERROR", "DM", dm, _filled(code) & ~_isin(code, arms), var,
                           f"{var} is not an ARMCD in TA"))
    return _concat(parts)


def arm_null_needs_armnrs(ds: Datasets, study=None) -> pd.DataFrame:
    """SDTMIG 3.4 DM: ARMNRS gives the reason when ARMCD or ACTARMCD is null (a screen
    failure has neither; a subject ASSIGNED, NOT TREATED keeps the assigned ARMCD with a null
    ACTARMCD), and is null when both are populated."""
    dm = ds["DM"]
    miss = _missing("XR021", "DM", dm, ["ARMCD", "ACTARMCD", "ARMNRS"], "arm reason unknown")
    if miss is not None:
        return miss
    reason = _filled(_text(dm, "ARMNRS"))
    empty = {var: ~_filled(_text(dm, var)) for var in ("ARMCD", "ACTARMCD")}
    parts = [_find("XR021", "ERROR", "DM", dm, empty[var] & ~reason, var,
                   f"{var} is null but ARMNRS gives no reason") for var in empty]
    both = ~empty["ARMCD"] & ~empty["ACTARMCD"]
    parts.append(_find("XR021", "ERROR", "DM", dm, both & reason, "ARMNRS",
                       "ARMNRS gives a reason although ARMCD and ACTARMCD are both populated"))
    return _concat(parts)


# ---------------------------------------------------------------- timing

def _dy_pairs(name: str, df: pd.DataFrame) -> list[tuple[str, str]]:
    p = _prefix(name)
    return [(dy, dtc) for dy, dtc in ((f"{p}DY", f"{p}DTC"), (f"{p}STDY", f"{p}STDTC"),
                                      (f"{p}ENDY", f"{p}ENDTC")) if dy in df]


def study_day_agrees(ds: Datasets, study=None) -> pd.DataFrame:
    """--DY = date - RFSTDTC (+1 on or after it): computed here, not with the builder's
    function, so a bug there cannot hide itself."""
    parts, checked = [], []
    for name, df in _subject_datasets(ds).items():
        pairs = _dy_pairs(name, df)
        if not pairs:
            continue
        ref = _dm_dates(ds, df, "RFSTDTC")
        for dy, dtc in pairs:
            if dtc not in df:
                parts.append(_notice("XR005", name, [dtc], f"{dy} cannot be checked"))
                continue
            when = _dates(df, dtc)
            unknown = np.isnat(when) | np.isnat(ref)
            # in whole days (the dates are midnights), which cannot overflow as nanoseconds can
            days = (when.astype("datetime64[D]").view(np.int64)
                    - ref.astype("datetime64[D]").view(np.int64)).astype("float64")
            days[unknown] = np.nan
            expected = np.where(days < 0, days, days + 1)
            actual = _num(df, dy)
            bad = np.flatnonzero(~((actual == expected) | (np.isnan(actual) & np.isnan(expected))))
            days_shown = np.nan_to_num(expected[bad]).round().astype("int64").astype(str)
            shown = np.where(np.isnan(expected[bad]), "none", days_shown).astype(object)
            msg = "expected " + shown + f" from {dtc} and DM.RFSTDTC (no day 0)"
            parts.append(_find("XR005", "ERROR", name, df, bad, dy, msg))
            known = np.flatnonzero(~np.isnan(expected) & ~np.isnan(actual))
            wrong = np.zeros(len(df), dtype=bool)
            wrong[bad] = True
            checked.append(pd.DataFrame({"USUBJID": _np(_text(df, "USUBJID"))[known],
                                         "wrong": wrong[known], "dataset": name,
                                         "offset": (actual - expected)[known]}))
    return _concat(_root_cause_rfstdtc(ds, parts, checked))


def _root_cause_rfstdtc(ds: Datasets, parts: list, checked: list[pd.DataFrame]) -> list:
    """One finding on DM.RFSTDTC, with the count, for a subject whose every checked --DY is
    wrong (at least 3): one reference date, not each record, is then what is off. Other
    subjects keep their findings per record."""
    if not checked or not any(p is not None for p in parts):
        return parts
    every = pd.concat(checked, ignore_index=True)
    per = every.groupby("USUBJID").agg(n=("wrong", "size"), bad=("wrong", "sum"))
    roots = per.index[(per["bad"] == per["n"]) & (per["n"] >= 3)]
    if not len(roots):
        return parts
    kept = [p[~p["USUBJID"].isin(roots)] for p in parts if p is not None]
    dm = ds["DM"]
    hit = np.flatnonzero(_np(pc.is_in(_text(dm, "USUBJID"), value_set=pa.array(list(roots), _STR))))
    wrong = every[every["USUBJID"].isin(roots)]
    names = wrong.groupby("USUBJID")["dataset"].agg(lambda d: ", ".join(sorted(set(d))))
    offset = wrong.groupby("USUBJID")["offset"].agg(lambda o: o.mode().iloc[0])
    subjects = _np(_text(dm, "USUBJID"))[hit]
    msg = [f"every study day of the subject disagrees with RFSTDTC ({int(per.at[u, 'n'])} "
           f"--DY values in {names[u]}, typically by {offset[u]:+g} days): RFSTDTC, or the "
           f"--DY derivation, is the one thing to correct" for u in subjects]
    return [*kept, _find("XR005", "ERROR", "DM", dm, hit, "RFSTDTC", msg)]


def start_not_after_end(ds: Datasets, study=None) -> pd.DataFrame:
    """--STDTC <= --ENDTC where both are full dates; times break a same-day tie only when
    both carry one (ISO 8601 text of equal precision sorts chronologically)."""
    parts = []
    for name, df in ds.items():
        p = _prefix(name)
        st, en = f"{p}STDTC", f"{p}ENDTC"
        if st not in df or en not in df:
            continue
        s_txt, e_txt = _text(df, st), _text(df, en)
        s, e = _dates(df, st), _dates(df, en)
        bad = s > e
        tie = np.flatnonzero(s == e)
        if len(tie):
            ts, te = _at(s_txt, tie), _at(e_txt, tie)
            timed = _np(pc.and_(pc.greater(pc.utf8_length(ts), 10), pc.greater(pc.utf8_length(te), 10)))
            # Arrow compares UTF-8 bytes, which orders as Python orders code points
            later = _np(pc.greater(pc.utf8_slice_codeunits(ts, 0, 16),
                                   pc.utf8_slice_codeunits(te, 0, 16)))
            bad[tie[timed & later]] = True
        bad = np.flatnonzero(bad)
        parts.append(_find("XR006", "ERROR", name, df, bad, st,
                           _concat_text(f"{st} is after {en} (", _at(e_txt, bad), ")")))
    return _concat(parts)


def seq_unique(ds: Datasets, study=None) -> pd.DataFrame:
    parts = []
    for name, df in _subject_datasets(ds).items():
        seq = f"{_prefix(name)}SEQ"
        if seq not in df:
            continue
        # pandas' hashing of the numbers (-0.0 is 0.0), NaN aside: a missing --SEQ is no duplicate
        s_codes, s_values = pd.factorize(_num(df, seq))
        bad = _repeated(_codes(_text(df, "USUBJID")), s_codes, len(s_values))
        parts.append(_find("XR007", "ERROR", name, df, bad, seq, f"{seq} is not unique within USUBJID"))
    return _concat(parts)


# ---------------------------------------------------------------- visits and epochs

def _codes(arr) -> np.ndarray:
    return _encode(arr)[1]


def _pairs(a: np.ndarray, b: np.ndarray, b_size: int) -> tuple[np.ndarray, int]:
    """(a, b) code pairs as one dense code per row, and how many distinct pairs there are."""
    pair = a * max(b_size, 1) + b
    if (a.max(initial=0) + 1) * max(b_size, 1) <= _DENSE:
        present = np.zeros((a.max(initial=0) + 1) * max(b_size, 1), dtype=bool)
        present[pair] = True
        return (np.cumsum(present) - 1)[pair], int(present.sum())
    uniq, inv = np.unique(pair, return_inverse=True)
    return inv, len(uniq)


def _repeated(a: np.ndarray, b: np.ndarray, b_size: int) -> np.ndarray:
    """Per row: another row has the same (a, b) codes; a row with a negative b code (missing)
    neither repeats nor is repeated."""
    out = np.zeros(len(a), dtype=bool)
    keep = np.flatnonzero(b >= 0)
    code, n = _pairs(a[keep], b[keep], b_size)
    out[keep] = np.bincount(code, minlength=n)[code] > 1
    return out


def _many(by: np.ndarray, of: np.ndarray) -> np.ndarray:
    """Per row: its `by` group holds more than one distinct `of` (codes)."""
    of_size = int(of.max(initial=-1)) + 1
    code, n = _pairs(by, of, of_size)
    first = np.zeros(n, dtype=np.int64)
    first[code] = by       # the `by` of each distinct pair
    counts = np.bincount(first, minlength=int(by.max(initial=-1)) + 1)
    return counts[by] > 1


def visit_one_to_one(ds: Datasets, study=None) -> pd.DataFrame:
    """Within a dataset each VISITNUM has one VISIT and each VISIT one VISITNUM."""
    parts = []
    for name, df in ds.items():
        if "VISITNUM" not in df or "VISIT" not in df:
            continue
        num, vis = _key(df, "VISITNUM"), _text(df, "VISIT")
        rows = np.flatnonzero(_filled(num) & _filled(vis))
        n, v = _codes(_at(num, rows)), _codes(_at(vis, rows))
        parts.append(_find("XR008", "ERROR", name, df, rows[_many(n, v)], "VISIT",
                           "this VISITNUM has more than one VISIT in the dataset"))
        parts.append(_find("XR008", "ERROR", name, df, rows[_many(v, n)], "VISITNUM",
                           "this VISIT has more than one VISITNUM in the dataset"))
    return _concat(parts)


def visits_in_sv(ds: Datasets, study=None) -> pd.DataFrame:
    """A subject's visit in any dataset is in SV for that subject, with the same VISIT name."""
    sv = ds["SV"]
    miss = _missing("XR009", "SV", sv, ["USUBJID", "VISITNUM", "VISIT"], "no visit reference")
    if miss is not None:
        return miss
    ref = [_text(sv, "USUBJID"), _key(sv, "VISITNUM")]
    # VISIT names compared as codes into SV's names (a name SV lacks gets -1)
    sv_names, sv_name = _encode(_text(sv, "VISIT"))
    parts = []
    for name, df in _subject_datasets(ds, ("VISITNUM", "VISIT")).items():
        if name == "SV":
            continue
        rows = np.flatnonzero(_filled(_key(df, "VISITNUM")))
        hit = _match([_at(_text(df, "USUBJID"), rows), _at(_key(df, "VISITNUM"), rows)], ref)
        absent = hit < 0
        name_code = _np(pc.fill_null(pc.index_in(_at(_text(df, "VISIT"), rows), value_set=sv_names), -1))
        renamed = ~absent & (name_code != sv_name[np.maximum(hit, 0)])
        bad = absent | renamed
        named = _np(_at(_text(sv, "VISIT"), np.maximum(hit[bad], 0))).astype(object)
        text = np.where(absent[bad], "VISITNUM is not an SV visit of the subject",
                        "VISIT differs from SV.VISIT '" + named + "'")
        parts.append(_find("XR009", "ERROR", name, df, rows[bad], "VISITNUM", text))
    return _concat(parts)


def epoch_in_ta(ds: Datasets, study=None) -> pd.DataFrame:
    ta = ds["TA"]
    miss = _missing("XR019", "TA", ta, ["EPOCH"], "planned epochs unknown")
    if miss is not None:
        return miss
    epochs = pc.unique(_text(ta, "EPOCH"))
    parts = []
    for name, df in ds.items():
        if name == "TA" or "EPOCH" not in df:
            continue
        ep = _text(df, "EPOCH")
        parts.append(_find("XR019", "ERROR", name, df, _filled(ep) & ~_isin(ep, epochs),
                           "EPOCH", "EPOCH is not an epoch of TA"))
    return _concat(parts)


# ---------------------------------------------------------------- death

def death_flag_date(ds: Datasets, study=None) -> pd.DataFrame:
    """DTHFL = Y exactly when DTHDTC is present (SDTMIG 3.4 DM assumptions)."""
    dm = ds["DM"]
    miss = _missing("XR010", "DM", dm, ["DTHFL", "DTHDTC"], "death not recorded in DM")
    if miss is not None:
        return miss
    flag, date = _is(_text(dm, "DTHFL"), "Y"), _filled(_text(dm, "DTHDTC"))
    return _concat([
        _find("XR010", "ERROR", "DM", dm, flag & ~date, "DTHFL", "DTHFL = Y but DTHDTC is empty"),
        _find("XR010", "ERROR", "DM", dm, ~flag & date, "DTHDTC", "DTHDTC is present but DTHFL is not Y"),
    ])


def _ds_deaths(ds: Datasets) -> np.ndarray:
    """Positions of the DS DEATH records."""
    return np.flatnonzero(_is(_text(ds["DS"], "DSDECOD"), "DEATH"))


def death_in_ds(ds: Datasets, study=None) -> pd.DataFrame:
    """A death flagged in DM has a DS DEATH record, and a DS DEATH record a DM death flag."""
    dm, d = ds["DM"], ds["DS"]
    miss = _first(_missing("XR011", "DM", dm, ["USUBJID", "DTHFL"], "death flag absent"),
                  _missing("XR011", "DS", d, ["USUBJID", "DSDECOD"], "disposition absent"))
    if miss is not None:
        return miss
    deaths = _ds_deaths(ds)
    dead_ds = _at(_text(d, "USUBJID"), deaths)
    subj, flag = _text(dm, "USUBJID"), _is(_text(dm, "DTHFL"), "Y")
    return _concat([
        _find("XR011", "ERROR", "DM", dm, flag & ~_isin(subj, dead_ds), "DTHFL",
              "DTHFL = Y but DS has no DSDECOD = DEATH record"),
        _find("XR011", "ERROR", "DS", d, deaths[~_isin(dead_ds, subj.filter(pa.array(flag)))], "DSDECOD",
              "DS records a DEATH but DM.DTHFL is not Y"),
    ])


def death_dates_agree(ds: Datasets, study=None) -> pd.DataFrame:
    """DS DEATH date (DSSTDTC) = DM.DTHDTC, compared on the date part."""
    d = ds["DS"]
    miss = _missing("XR012", "DS", d, ["USUBJID", "DSDECOD", "DSSTDTC"], "death date absent")
    if miss is not None:
        return miss
    deaths = _ds_deaths(ds)
    dm_row = _dm_rows(ds, d)[deaths]
    dth = pc.if_else(pa.array(dm_row >= 0), _at(_text(ds["DM"], "DTHDTC"), np.maximum(dm_row, 0)), "")
    same = pc.equal(pc.utf8_slice_codeunits(_at(_text(d, "DSSTDTC"), deaths), 0, 10),
                    pc.utf8_slice_codeunits(dth, 0, 10))
    bad = _filled(dth) & ~_np(same)
    msg = _concat_text("DS death date differs from DM.DTHDTC (", dth.filter(pa.array(bad)), ")")
    return _concat([_find("XR012", "ERROR", "DS", d, deaths[bad], "DSSTDTC", msg)])


def nothing_after_death(ds: Datasets, study=None) -> pd.DataFrame:
    """No record starts, ends or is collected after the death date (date part), apart from
    disposition and survival follow-up, which report the death itself."""
    dm = ds["DM"]
    if "USUBJID" not in dm:
        return _concat([])
    # DM's first record per subject speaks for the subject
    first = np.unique(_codes(_text(dm, "USUBJID")), return_index=True)[1]
    if np.isnat(_dates(dm, "DTHDTC")[first]).all():
        return _concat([])
    parts = []
    for name, df in _subject_datasets(ds).items():
        if name in _AFTER_DEATH_OK:
            continue
        death = _dm_dates(ds, df, "DTHDTC")
        dead = np.flatnonzero(~np.isnat(death))
        for var in (c for c in df.columns if c.startswith(_prefix(name)) and c.endswith("DTC")):
            if not len(dead):
                break
            bad = dead[_dates(df, var)[dead] > death[dead]]
            parts.append(_find(
                "XR013", "WARNING", name, df, bad, var,
                f"{var} is after the subject's death (DM.DTHDTC " + _ymd(death[bad])
                + "): check the date, or the death date"))
    return _concat(parts)


def ae_death_has_fatal_ae(ds: Datasets, study=None) -> pd.DataFrame:
    """A death whose primary cause is an adverse event (DD PRCDTH, DDRESCAT ADVERSE EVENT)
    has the AE that caused it: an AE record with AEOUT = FATAL for the subject."""
    dd, ae = ds["DD"], ds["AE"]
    miss = _first(_missing("XR026", "DD", dd, ["USUBJID", "DDTESTCD", "DDRESCAT"], "cause of death absent"),
                  _missing("XR026", "AE", ae, ["USUBJID", "AEOUT"], "AE outcome absent"))
    if miss is not None:
        return miss
    cause = _is(_text(dd, "DDTESTCD"), "PRCDTH") & _is(_text(dd, "DDRESCAT"), "ADVERSE EVENT")
    fatal = _text(ae, "USUBJID").filter(pc.equal(_text(ae, "AEOUT"), "FATAL"))
    bad = cause & ~_isin(_text(dd, "USUBJID"), fatal)
    return _concat([_find("XR026", "ERROR", "DD", dd, bad, "DDRESCAT",
                          "death due to an adverse event but AE has no record with AEOUT = FATAL")])


# Outcomes of an event that has not ended (CT OUT).
_NOT_ENDED = ("NOT RECOVERED/NOT RESOLVED", "RECOVERING/RESOLVING")


def ae_outcome_agrees_with_end(ds: Datasets, study=None) -> pd.DataFrame:
    """AEOUT and AEENDTC agree: an event not recovered or still recovering has not ended, so
    it has no end date (the CORE finding). A recovered event without an end date is not
    flagged: the site may not know the day it resolved."""
    ae = ds["AE"]
    if "AEOUT" not in ae or "AEENDTC" not in ae:     # both permissible/expected: nothing to compare
        return _concat([])
    out = _text(ae, "AEOUT")
    bad = np.flatnonzero(_isin(out, _NOT_ENDED) & _filled(_text(ae, "AEENDTC")))
    return _concat([_find("XR027", "ERROR", "AE", ae, bad, "AEOUT",
                          _concat_text("AEOUT ", _at(out, bad), " but AEENDTC is present"))])


# ---------------------------------------------------------------- relationships

def _resolve(name: str, rel: pd.DataFrame, ds: Datasets, rule: str) -> pd.DataFrame:
    """Records of a SUPP-- or RELREC whose RDOMAIN/USUBJID/IDVAR/IDVARVAL match no parent
    record. Loops over the few distinct (RDOMAIN, IDVAR) pairs, looking each up at once."""
    miss = _missing(rule, name, rel, ["RDOMAIN", "IDVAR", "IDVARVAL"], "references unreadable")
    if miss is not None:
        return miss
    dom, var, u = _text(rel, "RDOMAIN"), _text(rel, "IDVAR"), _text(rel, "USUBJID")
    val = _key(rel, "IDVARVAL")
    ok = np.zeros(len(rel), dtype=bool)
    why = np.full(len(rel), "no parent record matches", dtype=object)
    (_, dom_codes), (var_values, var_codes) = _encode(dom), _encode(var)
    pair = dom_codes * len(var_values) + var_codes
    order = np.argsort(pair, kind="stable")
    starts = np.flatnonzero(np.r_[True, pair[order][1:] != pair[order][:-1]])
    dataset_level = ~_filled(u)
    for grp in np.split(order, starts[1:]):
        if not len(grp):
            continue
        g_dom, g_var = dom[int(grp[0])].as_py(), var[int(grp[0])].as_py()
        parent = ds.get(g_dom)
        if parent is None:
            why[grp] = f"parent dataset {g_dom} is absent"
            continue
        if g_var and g_var not in parent:
            why[grp] = f"IDVAR {g_var} is not a variable of {g_dom}"
            continue
        # A RELREC dataset-level relationship has no USUBJID: the IDVAR must only exist.
        ok[grp[dataset_level[grp]]] = rule == "XR015" and bool(g_var)
        sub = grp[~dataset_level[grp]]
        left, right = [_at(u, sub)], [_text(parent, "USUBJID")]
        if g_var:
            left.append(_at(val, sub))
            right.append(_key(parent, g_var))
        ok[sub[_match(left, right) >= 0]] = True
    bad = np.flatnonzero(~ok)
    return _concat([_find(rule, "ERROR", name, rel, bad, "IDVARVAL",
                          f"{name} record does not resolve to a parent: " + why[bad])])


def supp_parents_exist(ds: Datasets, study=None) -> pd.DataFrame:
    return _concat(_resolve(n, df, ds, "XR014") for n, df in ds.items() if n.startswith("SUPP"))


def relrec_links_resolve(ds: Datasets, study=None) -> pd.DataFrame:
    return _resolve("RELREC", ds["RELREC"], ds, "XR015")


def tr_links_to_tu(ds: Datasets, study=None) -> pd.DataFrame:
    """Every TR.TRLNKID names a TU.TULNKID of the same subject; where RS/TR carry link
    groups (--LNKGRP), every RSLNKGRP names a TRLNKGRP of the subject."""
    tu, tr = ds["TU"], ds["TR"]
    miss = _first(_missing("XR016", "TU", tu, ["USUBJID", "TULNKID"], "tumour ids absent"),
                  _missing("XR016", "TR", tr, ["USUBJID", "TRLNKID"], "tumour links absent"))
    if miss is not None:
        return miss
    link = [_text(tr, "USUBJID"), _text(tr, "TRLNKID")]
    bad = _filled(link[1]) & (_match(link, [_text(tu, "USUBJID"), _text(tu, "TULNKID")]) < 0)
    parts = [_find("XR016", "ERROR", "TR", tr, bad, "TRLNKID",
                   "TRLNKID has no TU record with this TULNKID for the subject")]
    rs = ds.get("RS")
    if rs is not None and "RSLNKGRP" in rs and "TRLNKGRP" in tr:
        grp = [_text(rs, "USUBJID"), _text(rs, "RSLNKGRP")]
        bad = _filled(grp[1]) & (_match(grp, [_text(tr, "USUBJID"), _text(tr, "TRLNKGRP")]) < 0)
        parts.append(_find("XR016", "ERROR", "RS", rs, bad, "RSLNKGRP",
                           "RSLNKGRP has no TR record with this TRLNKGRP for the subject"))
    return _concat(parts)


def tu_has_tr(ds: Datasets, study=None) -> pd.DataFrame:
    tu, tr = ds["TU"], ds["TR"]
    miss = _first(_missing("XR017", "TU", tu, ["USUBJID", "TULNKID"], "tumour ids absent"),
                  _missing("XR017", "TR", tr, ["USUBJID", "TRLNKID"], "tumour links absent"))
    if miss is not None:
        return miss
    unmeasured = _match([_text(tu, "USUBJID"), _text(tu, "TULNKID")],
                        [_text(tr, "USUBJID"), _text(tr, "TRLNKID")]) < 0
    return _concat([_find("XR017", "WARNING", "TU", tu, unmeasured, "TULNKID",
                          "identified tumour/lesion has no TR assessment")])


# ---------------------------------------------------------------- trial summary

def ts_required_parameters(ds: Datasets, study=None) -> pd.DataFrame:
    """Each required TSPARMCD is present, with a TSVAL or a null flavor (TSVALNF)."""
    ts = ds["TS"]
    miss = _missing("XR018", "TS", ts, ["TSPARMCD"], "parameters unknown")
    if miss is not None:
        return miss
    code = _text(ts, "TSPARMCD")
    absent = sorted(set(TS_REQUIRED) - set(pc.unique(code).to_pylist()))
    rows = pd.DataFrame({"TSPARMCD": absent})
    empty = _isin(code, TS_REQUIRED) & ~_filled(_text(ts, "TSVAL")) & ~_filled(_text(ts, "TSVALNF"))
    return _concat([
        make_findings("XR018", "ERROR", "TS", rows, "TSPARMCD", "required TS parameter is missing"),
        _find("XR018", "ERROR", "TS", ts, empty, "TSPARMCD",
              "required TS parameter has neither TSVAL nor TSVALNF"),
    ])


# ---------------------------------------------------------------- results

def units_consistent(ds: Datasets, study=None) -> pd.DataFrame:
    """One standard unit per test within a dataset (empty units ignored): mixed units make
    --STRESN incomparable across records."""
    parts = []
    for name, df in ds.items():
        p = _prefix(name)
        tc, u = f"{p}TESTCD", f"{p}STRESU"
        if tc not in df or u not in df:
            continue
        rows = np.flatnonzero(_filled(_text(df, u)))
        test = _at(_text(df, tc), rows)
        bad = _many(_codes(test), _codes(_at(_text(df, u), rows)))
        parts.append(_find("XR022", "ERROR", name, df, rows[bad], u,
                           _concat_text(f"{tc} ", test.filter(pa.array(bad)),
                                        f" has more than one {u} in {name}")))
    return _concat(parts)


def stresn_matches_stresc(ds: Datasets, study=None) -> pd.DataFrame:
    """A numeric --STRESC is carried in --STRESN with the same value; --STRESN without a
    numeric --STRESC is equally wrong."""
    parts = []
    for name, df in ds.items():
        p = _prefix(name)
        c, n = f"{p}STRESC", f"{p}STRESN"
        if c not in df or n not in df:
            continue
        as_num, stresn = _numbers(df, c), _num(df, n)
        has_c, has_n = ~np.isnan(as_num), ~np.isnan(stresn)
        same = np.isclose(np.where(has_c, as_num, 0.0), np.where(has_n, stresn, 0.0), rtol=1e-9, atol=0)
        bad = np.flatnonzero((has_c & (~has_n | ~same)) | (~has_c & has_n))
        parts.append(_find("XR023", "ERROR", name, df, bad, n,
                           _concat_text(f"{n} does not equal the numeric {c} '",
                                        _at(_text(df, c), bad), "'")))
    return _concat(parts)


def _char_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]


def _screen(text) -> tuple[bool, int]:
    """Whether every byte of a large_string column is ASCII, and its longest value in bytes,
    read off the Arrow buffers (offsets and data) at memory speed; most columns pass both."""
    ascii_, longest = True, 0
    for chunk in text.chunks if isinstance(text, pa.ChunkedArray) else [text]:
        if not len(chunk):
            continue
        start = chunk.offset
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[start:start + len(chunk) + 1]
        longest = max(longest, int(np.diff(offsets).max()))
        data = chunk.buffers()[2]
        if ascii_ and data is not None and offsets[-1] > offsets[0]:
            ascii_ = bool(np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]].max() < 0x80)
    return ascii_, longest


def _char_checks(df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over a Char column for XR024 and XR025: positions of non-ASCII values
    (after stripping, as the other rules read them), positions longer than MAX_BYTES and
    their byte lengths. Only these few positions are kept for the run."""
    def check():
        text = _filled_text(df[col])
        ascii_, longest = _screen(text)
        odd = long = size = np.zeros(0, dtype=np.int64)
        if not ascii_:
            odd = np.flatnonzero(~_np(pc.string_is_ascii(text)))
            # stripping may drop non-ASCII blanks (U+00A0, U+3000) at either end
            odd = odd[~_np(pc.string_is_ascii(pc.utf8_trim_whitespace(_at(text, odd))))]
        if longest > MAX_BYTES:
            size = _np(pc.binary_length(text))
            long = np.flatnonzero(size > MAX_BYTES)
            size = size[long]
        return odd, long, size
    return _once("char", df, col, check)


def ascii_only(ds: Datasets, study=None) -> pd.DataFrame:
    """FDA TCG: character data are ASCII (transport files are read as US-ASCII/Latin-1)."""
    parts = []
    for name, df in ds.items():
        for col in _char_columns(df):
            parts.append(_find("XR024", "ERROR", name, df, _char_checks(df, col)[0], col,
                               f"{col} contains non-ASCII characters"))
    return _concat(parts)


def within_200_bytes(ds: Datasets, study=None) -> pd.DataFrame:
    parts = []
    for name, df in ds.items():
        for col in _char_columns(df):
            _, long, size = _char_checks(df, col)
            parts.append(_find("XR025", "ERROR", name, df, long, col,
                               f"{col} is longer than {MAX_BYTES} bytes ("
                               + size.astype(str).astype(object) + ")"))
    return _concat(parts)


# ---------------------------------------------------------------- registry

RULES: tuple[Rule, ...] = (
    Rule("XR001", "ERROR", "USUBJID of every subject record is in DM",
         "SDTMIG 3.4 DM: one record per subject; every subject in the study has a DM record", ("DM",),
         usubjid_in_dm),
    Rule("XR002", "ERROR", "screen failures have no EX records",
         "SDTMIG 3.4 DM assumptions (ARMNRS = SCREEN FAILURE: not assigned, not treated)", ("DM", "EX"),
         screen_failure_not_exposed),
    Rule("XR003", "ERROR", "DM.RFXSTDTC = earliest EX start (date part)",
         "SDTMIG 3.4 DM: RFXSTDTC = first exposure to study treatment", ("DM", "EX"),
         rfxstdtc_first_exposure),
    Rule("XR004", "ERROR", "DM.RFXENDTC = latest EX end (date part)",
         "SDTMIG 3.4 DM: RFXENDTC = last exposure to study treatment", ("DM", "EX"),
         rfxendtc_last_exposure),
    Rule("XR005", "ERROR", "--DY/--STDY/--ENDY agree with the date and DM.RFSTDTC; no day 0",
         "SDTMIG 3.4 timing assumptions: study day variables", ("DM",), study_day_agrees),
    Rule("XR006", "ERROR", "--STDTC is not after --ENDTC",
         "SDTMIG 3.4 timing assumptions (start/end date)", (), start_not_after_end),
    Rule("XR007", "ERROR", "--SEQ unique within USUBJID in a dataset",
         "SDTMIG 3.4 identifier variables: --SEQ uniquely identifies a subject's record", (), seq_unique),
    Rule("XR008", "ERROR", "VISITNUM and VISIT one-to-one within a dataset",
         "SDTMIG 3.4 timing variables VISITNUM/VISIT", (), visit_one_to_one),
    Rule("XR009", "ERROR", "subject visits exist in SV with the same VISIT",
         "SDTMIG 3.4 SV: one record per subject visit actually made", ("SV",), visits_in_sv),
    Rule("XR010", "ERROR", "DM.DTHFL = Y exactly when DM.DTHDTC is present",
         "SDTMIG 3.4 DM variables DTHDTC/DTHFL", ("DM",), death_flag_date),
    Rule("XR011", "ERROR", "DM.DTHFL = Y exactly when DS has a DSDECOD = DEATH record",
         "SDTMIG 3.4 DS assumptions (death as a disposition event)", ("DM", "DS"), death_in_ds),
    Rule("XR012", "ERROR", "DS death date equals DM.DTHDTC",
         "SDTMIG 3.4 DM/DS death date", ("DM", "DS"), death_dates_agree),
    Rule("XR013", "WARNING", "no record dated after death (except DS, SS)",
         "FDA TCG data quality expectation; SDTMIG 3.4 DM DTHDTC", ("DM",), nothing_after_death),
    Rule("XR014", "ERROR", "SUPP-- records resolve to a parent record",
         "SDTMIG 3.4 section 8.4 (SUPPQUAL: RDOMAIN, USUBJID, IDVAR, IDVARVAL)", (), supp_parents_exist),
    Rule("XR015", "ERROR", "RELREC records resolve to a record (or variable) of RDOMAIN",
         "SDTMIG 3.4 section 8.2-8.3 (RELREC)", ("RELREC",), relrec_links_resolve),
    Rule("XR016", "ERROR", "TR.TRLNKID (and RS.RSLNKGRP) link to the subject's TU (TR) records",
         "SDTMIG 3.4 TU/TR/RS assumptions (--LNKID, --LNKGRP)", ("TU", "TR"), tr_links_to_tu),
    Rule("XR017", "WARNING", "every TU record has at least one TR record",
         "SDTMIG 3.4 TU/TR assumptions (identified lesions are assessed in TR)", ("TU", "TR"), tu_has_tr),
    Rule("XR018", "ERROR", "TS has the FDA-required parameters, each with a value or TSVALNF",
         "FDA Study Data TCG, Trial Summary (TS) section; SDTMIG 3.4 TS", ("TS",), ts_required_parameters),
    Rule("XR019", "ERROR", "EPOCH values exist in TA",
         "SDTMIG 3.4 TA/EPOCH: EPOCH values come from the trial design", ("TA",), epoch_in_ta),
    Rule("XR020", "ERROR", "DM.ARMCD/ACTARMCD exist in TA",
         "SDTMIG 3.4 DM/TA: arm codes are the planned arms", ("DM", "TA"), arm_codes_in_ta),
    Rule("XR021", "ERROR", "DM.ARMNRS populated exactly when ARMCD or ACTARMCD is null",
         "SDTMIG 3.4 DM assumptions (ARMNRS)", ("DM",), arm_null_needs_armnrs),
    Rule("XR022", "ERROR", "one --STRESU per --TESTCD within a dataset",
         "SDTMIG 3.4 findings assumptions: standardized results in one unit", (), units_consistent),
    Rule("XR023", "ERROR", "--STRESN equals a numeric --STRESC",
         "SDTMIG 3.4 findings assumptions (--STRESC/--STRESN)", (), stresn_matches_stresc),
    Rule("XR024", "ERROR", "character values are ASCII",
         "FDA Study Data TCG: character encoding of SAS XPORT data", (), ascii_only),
    Rule("XR025", "ERROR", "character values are at most 200 bytes",
         "FDA Study Data TCG / SAS XPORT v5: 200-byte character limit", (), within_200_bytes),
    Rule("XR026", "ERROR", "a death due to an adverse event (DD PRCDTH) has an AE with AEOUT = FATAL",
         "SDTMIG 3.4 DD and AE assumptions (a fatal AE: AEOUT FATAL, AESDTH Y); FDA TCG death data",
         ("DD", "AE"), ae_death_has_fatal_ae),
    Rule("XR027", "ERROR", "AEOUT agrees with AEENDTC (no end date while not recovered/recovering)",
         "SDTMIG 3.4 AE assumptions (AEOUT, AEENDTC); CDISC CORE SDTMIG rule on AEOUT with AEENDTC",
         ("AE",), ae_outcome_agrees_with_end),
)


def run_rules(datasets: Datasets, study=None) -> pd.DataFrame:
    """All findings of every rule whose datasets are present, in rule order."""
    ds = {name.upper(): df for name, df in datasets.items() if df is not None}
    token = _RUN.set({})          # column values shared by the rules of this call only
    try:
        return _concat([r.check(ds, study) for r in RULES if all(n in ds for n in r.needs)])
    finally:
        _RUN.reset(token)
