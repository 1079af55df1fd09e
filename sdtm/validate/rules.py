"""Cross-dataset SDTM conformance rules: a registry of small, vectorised checks.

Each rule is data (id, severity, description, the public rule or guidance it mirrors, the
datasets it needs) plus one function `(datasets, study) -> findings`. `run_rules` runs them
all; a rule whose datasets are absent is skipped, and a missing variable gives a NOTICE, so
a partial delivery is still validated as far as it can be.

Rule ids are this project's own (`XR###`); `mirrors` names the SDTMIG 3.4 section or FDA
Study Data Technical Conformance Guide (TCG) requirement the rule implements, by name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    description: str
    mirrors: str
    needs: tuple[str, ...]
    check: Callable[[Datasets, object], pd.DataFrame]


# ---------------------------------------------------------------- helpers

def _text(df: pd.DataFrame, col: str) -> pd.Series:
    """A column as stripped text ('' for missing or absent), so blanks compare uniformly."""
    if col not in df:
        return pd.Series("", index=df.index, dtype=object)
    return df[col].fillna("").astype(str).str.strip()


def _key(values: pd.Series) -> pd.Series:
    """Join key that makes 1.0 (a numeric --SEQ) and '1' (its IDVARVAL text) equal."""
    text = values.fillna("").astype(str).str.strip()
    num = pd.to_numeric(text, errors="coerce")
    return text.where(num.isna(), num.astype("float64").astype(str))


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


def _prefix(name: str) -> str:
    return name[:2]


def _subject_datasets(ds: Datasets, with_cols=()) -> dict[str, pd.DataFrame]:
    """Subject-level general-observation datasets (not DM, SUPP--, RELREC, trial design)."""
    return {n: df for n, df in ds.items()
            if n != "DM" and not n.startswith("SUPP") and n not in _NON_SUBJECT
            and "USUBJID" in df and all(c in df for c in with_cols)}


def _dm_column(ds: Datasets, col: str) -> pd.Series:
    """DM's `col` indexed by USUBJID (text)."""
    dm = ds["DM"]
    if "USUBJID" not in dm:
        return pd.Series(dtype=object)
    return pd.Series(_text(dm, col).values, index=_text(dm, "USUBJID").values).loc[
        lambda s: ~s.index.duplicated()]


# ---------------------------------------------------------------- subjects and arms

def usubjid_in_dm(ds: Datasets, study=None) -> pd.DataFrame:
    """Every subject record (including SUPP--) belongs to a subject in DM."""
    known = set(_dm_column(ds, "USUBJID").index)
    parts = []
    for name, df in ds.items():
        if name == "DM" or name in _NON_SUBJECT or "USUBJID" not in df:
            continue
        subj = _text(df, "USUBJID")
        bad = df[(subj != "") & ~subj.isin(known)]
        parts.append(make_findings("XR001", "ERROR", name, bad, "USUBJID",
                                   "USUBJID is not a subject in DM"))
    return _concat(parts)


def screen_failure_not_exposed(ds: Datasets, study=None) -> pd.DataFrame:
    dm, ex = ds["DM"], ds["EX"]
    miss = _missing("XR002", "DM", dm, ["USUBJID", "ARMNRS"], "screen failures unknown")
    if miss is not None:
        return miss
    failed = _text(dm, "USUBJID")[_text(dm, "ARMNRS") == "SCREEN FAILURE"]
    bad = ex[_text(ex, "USUBJID").isin(set(failed))]
    return make_findings("XR002", "ERROR", "EX", bad, "USUBJID",
                         "screen failure (DM.ARMNRS = SCREEN FAILURE) has an exposure record")


def _exposure_bound(ds: Datasets, rule: str, dm_var: str, ex_vars: list[str], latest: bool):
    """DM.`dm_var` (date part) against the earliest/latest full EX date of `ex_vars`
    (the first present of them per record), for subjects with EX records; a DM value for a
    subject without exposure is also wrong (SDTMIG: RFX dates are exposure dates)."""
    dm, ex = ds["DM"], ds["EX"]
    miss = _first(_missing(rule, "DM", dm, ["USUBJID", dm_var], "reference dates absent"),
                  _missing(rule, "EX", ex, ["USUBJID", ex_vars[0]], "exposure dates absent"))
    if miss is not None:
        return miss
    dates = to_datetime(_text(ex, ex_vars[0]))
    for fallback in ex_vars[1:]:
        dates = dates.fillna(to_datetime(_text(ex, fallback)))
    by_subj = dates.groupby(_text(ex, "USUBJID").values)
    bound = by_subj.max() if latest else by_subj.min()
    exposed = set(_text(ex, "USUBJID"))
    subj = _text(dm, "USUBJID")
    expected = subj.map(bound)
    actual = to_datetime(_text(dm, dm_var))
    word = "latest EX end" if latest else "earliest EX start"
    wrong_date = expected.notna() & (actual != expected)
    no_ex = (_text(dm, dm_var) != "") & ~subj.isin(exposed)
    msg = pd.Series(f"{dm_var} is not the {word} date (", index=dm.index) \
        + expected.dt.strftime("%Y-%m-%d").fillna("") + ")"
    msg = msg.where(~no_ex, f"{dm_var} is populated but the subject has no EX records")
    bad = wrong_date | no_ex
    return make_findings(rule, "ERROR", "DM", dm[bad], dm_var, msg[bad])


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
    arms = set(_text(ta, "ARMCD")) - {""}
    parts = []
    for var in ("ARMCD", "ACTARMCD"):
        code = _text(dm, var)
        bad = dm[(code != "") & ~code.isin(arms)]
        parts.append(make_findings("XR020", "ERROR", "DM", bad, var, f"{var} is not an ARMCD in TA"))
    return _concat(parts)


def arm_null_needs_armnrs(ds: Datasets, study=None) -> pd.DataFrame:
    """SDTMIG 3.4 DM: ARMNRS gives the reason when ARMCD or ACTARMCD is null (a screen
    failure has neither; a subject ASSIGNED, NOT TREATED keeps the assigned ARMCD with a null
    ACTARMCD), and is null when both are populated."""
    dm = ds["DM"]
    miss = _missing("XR021", "DM", dm, ["ARMCD", "ACTARMCD", "ARMNRS"], "arm reason unknown")
    if miss is not None:
        return miss
    reason = _text(dm, "ARMNRS") != ""
    empty = {var: _text(dm, var) == "" for var in ("ARMCD", "ACTARMCD")}
    parts = [make_findings("XR021", "ERROR", "DM", dm[empty[var] & ~reason], var,
                           f"{var} is null but ARMNRS gives no reason") for var in empty]
    both = ~empty["ARMCD"] & ~empty["ACTARMCD"]
    parts.append(make_findings("XR021", "ERROR", "DM", dm[both & reason], "ARMNRS",
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
    rfst = _dm_column(ds, "RFSTDTC")
    parts = []
    for name, df in _subject_datasets(ds).items():
        ref = to_datetime(_text(df, "USUBJID").map(rfst))
        for dy, dtc in _dy_pairs(name, df):
            if dtc not in df:
                parts.append(_notice("XR005", name, [dtc], f"{dy} cannot be checked"))
                continue
            days = (to_datetime(_text(df, dtc)) - ref).dt.days
            expected = days.where(days < 0, days + 1)
            actual = pd.to_numeric(df[dy], errors="coerce")
            bad = ~((actual == expected) | (actual.isna() & expected.isna()))
            shown = pd.Series(np.where(expected.notna(), expected.fillna(0).round().astype("int64").astype(str),
                                       "none"), index=df.index)
            msg = "expected " + shown + f" from {dtc} and DM.RFSTDTC (no day 0)"
            parts.append(make_findings("XR005", "ERROR", name, df[bad], dy, msg[bad]))
    return _concat(parts)


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
        s, e = to_datetime(s_txt), to_datetime(e_txt)
        timed = (s_txt.str.len() > 10) & (e_txt.str.len() > 10)
        bad = (s > e) | ((s == e) & timed & (s_txt.str[:16] > e_txt.str[:16]))
        parts.append(make_findings("XR006", "ERROR", name, df[bad], st,
                                   f"{st} is after {en} (" + e_txt[bad] + ")"))
    return _concat(parts)


def seq_unique(ds: Datasets, study=None) -> pd.DataFrame:
    parts = []
    for name, df in _subject_datasets(ds).items():
        seq = f"{_prefix(name)}SEQ"
        if seq not in df:
            continue
        keyed = pd.DataFrame({"u": _text(df, "USUBJID"), "s": pd.to_numeric(df[seq], errors="coerce")})
        bad = keyed["s"].notna() & keyed.duplicated(["u", "s"], keep=False)
        parts.append(make_findings("XR007", "ERROR", name, df[bad], seq,
                                   f"{seq} is not unique within USUBJID"))
    return _concat(parts)


# ---------------------------------------------------------------- visits and epochs

def _visit_frame(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"num": _key(df["VISITNUM"]), "vis": _text(df, "VISIT")}, index=df.index)


def visit_one_to_one(ds: Datasets, study=None) -> pd.DataFrame:
    """Within a dataset each VISITNUM has one VISIT and each VISIT one VISITNUM."""
    parts = []
    for name, df in ds.items():
        if "VISITNUM" not in df or "VISIT" not in df:
            continue
        v = _visit_frame(df)
        v = v[(v["num"] != "") & (v["vis"] != "")]
        many_vis = v.groupby("num")["vis"].transform("nunique") > 1
        many_num = v.groupby("vis")["num"].transform("nunique") > 1
        parts.append(make_findings("XR008", "ERROR", name, df.loc[v.index[many_vis]], "VISIT",
                                   "this VISITNUM has more than one VISIT in the dataset"))
        parts.append(make_findings("XR008", "ERROR", name, df.loc[v.index[many_num]], "VISITNUM",
                                   "this VISIT has more than one VISITNUM in the dataset"))
    return _concat(parts)


def visits_in_sv(ds: Datasets, study=None) -> pd.DataFrame:
    """A subject's visit in any dataset is in SV for that subject, with the same VISIT name."""
    sv = ds["SV"]
    miss = _missing("XR009", "SV", sv, ["USUBJID", "VISITNUM", "VISIT"], "no visit reference")
    if miss is not None:
        return miss
    ref = pd.DataFrame({"u": _text(sv, "USUBJID"), **_visit_frame(sv)}).drop_duplicates(["u", "num"])
    parts = []
    for name, df in _subject_datasets(ds, ("VISITNUM", "VISIT")).items():
        if name == "SV":
            continue
        rec = pd.DataFrame({"u": _text(df, "USUBJID"), **_visit_frame(df)}).reset_index()
        rec = rec[rec["num"] != ""].merge(ref, on=["u", "num"], how="left", suffixes=("", "_sv"))
        absent = rec["vis_sv"].isna()
        renamed = ~absent & (rec["vis"] != rec["vis_sv"])
        bad = absent | renamed
        text = pd.Series(np.where(absent, "VISITNUM is not an SV visit of the subject",
                                  "VISIT differs from SV.VISIT '" + rec["vis_sv"].fillna("") + "'"))
        rows = df.loc[rec.loc[bad, "index"]]
        parts.append(make_findings("XR009", "ERROR", name, rows, "VISITNUM",
                                   pd.Series(text[bad].values, index=rows.index)))
    return _concat(parts)


def epoch_in_ta(ds: Datasets, study=None) -> pd.DataFrame:
    ta = ds["TA"]
    miss = _missing("XR019", "TA", ta, ["EPOCH"], "planned epochs unknown")
    if miss is not None:
        return miss
    epochs = set(_text(ta, "EPOCH")) - {""}
    parts = []
    for name, df in ds.items():
        if name == "TA" or "EPOCH" not in df:
            continue
        ep = _text(df, "EPOCH")
        parts.append(make_findings("XR019", "ERROR", name, df[(ep != "") & ~ep.isin(epochs)],
                                   "EPOCH", "EPOCH is not an epoch of TA"))
    return _concat(parts)


# ---------------------------------------------------------------- death

def death_flag_date(ds: Datasets, study=None) -> pd.DataFrame:
    """DTHFL = Y exactly when DTHDTC is present (SDTMIG 3.4 DM assumptions)."""
    dm = ds["DM"]
    miss = _missing("XR010", "DM", dm, ["DTHFL", "DTHDTC"], "death not recorded in DM")
    if miss is not None:
        return miss
    flag, date = _text(dm, "DTHFL") == "Y", _text(dm, "DTHDTC") != ""
    return _concat([
        make_findings("XR010", "ERROR", "DM", dm[flag & ~date], "DTHFL", "DTHFL = Y but DTHDTC is empty"),
        make_findings("XR010", "ERROR", "DM", dm[~flag & date], "DTHDTC", "DTHDTC is present but DTHFL is not Y"),
    ])


def _ds_deaths(ds: Datasets) -> pd.DataFrame:
    d = ds["DS"]
    deaths = d[_text(d, "DSDECOD") == "DEATH"]
    return deaths.assign(_u=_text(deaths, "USUBJID"))


def death_in_ds(ds: Datasets, study=None) -> pd.DataFrame:
    """A death flagged in DM has a DS DEATH record, and a DS DEATH record a DM death flag."""
    dm, d = ds["DM"], ds["DS"]
    miss = _first(_missing("XR011", "DM", dm, ["USUBJID", "DTHFL"], "death flag absent"),
                  _missing("XR011", "DS", d, ["USUBJID", "DSDECOD"], "disposition absent"))
    if miss is not None:
        return miss
    dead_ds = set(_ds_deaths(ds)["_u"])
    subj, flag = _text(dm, "USUBJID"), _text(dm, "DTHFL") == "Y"
    deaths = _ds_deaths(ds)
    return _concat([
        make_findings("XR011", "ERROR", "DM", dm[flag & ~subj.isin(dead_ds)], "DTHFL",
                      "DTHFL = Y but DS has no DSDECOD = DEATH record"),
        make_findings("XR011", "ERROR", "DS", deaths[~deaths["_u"].isin(set(subj[flag]))], "DSDECOD",
                      "DS records a DEATH but DM.DTHFL is not Y"),
    ])


def death_dates_agree(ds: Datasets, study=None) -> pd.DataFrame:
    """DS DEATH date (DSSTDTC) = DM.DTHDTC, compared on the date part."""
    d = ds["DS"]
    miss = _missing("XR012", "DS", d, ["USUBJID", "DSDECOD", "DSSTDTC"], "death date absent")
    if miss is not None:
        return miss
    deaths = _ds_deaths(ds)
    dth = deaths["_u"].map(_dm_column(ds, "DTHDTC")).fillna("")
    bad = (dth != "") & (_text(deaths, "DSSTDTC").str[:10] != dth.str[:10])
    return make_findings("XR012", "ERROR", "DS", deaths[bad], "DSSTDTC",
                         "DS death date differs from DM.DTHDTC (" + dth[bad] + ")")


def nothing_after_death(ds: Datasets, study=None) -> pd.DataFrame:
    """No record starts, ends or is collected after the death date (date part), apart from
    disposition and survival follow-up, which report the death itself."""
    dth = to_datetime(_dm_column(ds, "DTHDTC")).dropna()
    parts = []
    for name, df in _subject_datasets(ds).items():
        if name in _AFTER_DEATH_OK or dth.empty:
            continue
        death = _text(df, "USUBJID").map(dth)
        for var in (c for c in df.columns if c.startswith(_prefix(name)) and c.endswith("DTC")):
            when = to_datetime(_text(df, var))
            bad = when > death
            parts.append(make_findings(
                "XR013", "WARNING", name, df[bad], var,
                f"{var} is after the subject's death (DM.DTHDTC " + death[bad].dt.strftime("%Y-%m-%d")
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
    cause = dd[(_text(dd, "DDTESTCD") == "PRCDTH") & (_text(dd, "DDRESCAT") == "ADVERSE EVENT")]
    fatal = set(_text(ae, "USUBJID")[_text(ae, "AEOUT") == "FATAL"])
    bad = cause[~_text(cause, "USUBJID").isin(fatal)]
    return make_findings("XR026", "ERROR", "DD", bad, "DDRESCAT",
                         "death due to an adverse event but AE has no record with AEOUT = FATAL")


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
    bad = out.isin(_NOT_ENDED) & (_text(ae, "AEENDTC") != "")
    return make_findings("XR027", "ERROR", "AE", ae[bad], "AEOUT", "AEOUT " + out[bad] + " but AEENDTC is present")


# ---------------------------------------------------------------- relationships

def _resolve(name: str, rel: pd.DataFrame, ds: Datasets, rule: str) -> pd.DataFrame:
    """Records of a SUPP-- or RELREC whose RDOMAIN/USUBJID/IDVAR/IDVARVAL match no parent
    record. Loops over the few distinct (RDOMAIN, IDVAR) pairs, merging each at once."""
    miss = _missing(rule, name, rel, ["RDOMAIN", "IDVAR", "IDVARVAL"], "references unreadable")
    if miss is not None:
        return miss
    keys = pd.DataFrame({"dom": _text(rel, "RDOMAIN"), "u": _text(rel, "USUBJID"),
                         "var": _text(rel, "IDVAR"), "val": _key(rel["IDVARVAL"])}, index=rel.index)
    ok = pd.Series(False, index=rel.index)
    why = pd.Series("no parent record matches", index=rel.index)
    for (dom, var), grp in keys.groupby(["dom", "var"]):
        parent = ds.get(dom)
        if parent is None:
            why[grp.index] = f"parent dataset {dom} is absent"
            continue
        if var and var not in parent:
            why[grp.index] = f"IDVAR {var} is not a variable of {dom}"
            continue
        pk = pd.DataFrame({"u": _text(parent, "USUBJID")})
        on = ["u"]
        if var:
            pk["val"] = _key(parent[var])
            on.append("val")
        # A RELREC dataset-level relationship has no USUBJID: the IDVAR must only exist.
        dataset_level = grp["u"] == ""
        ok[grp.index[dataset_level]] = rule == "XR015" and bool(var)
        sub = grp[~dataset_level]
        hit = sub.reset_index().merge(pk.drop_duplicates(), on=on, how="inner")["index"]
        ok[hit] = True
    return make_findings(rule, "ERROR", name, rel[~ok], "IDVARVAL",
                         f"{name} record does not resolve to a parent: " + why[~ok])


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
    known = set(zip(_text(tu, "USUBJID"), _text(tu, "TULNKID")))
    link = pd.Series(list(zip(_text(tr, "USUBJID"), _text(tr, "TRLNKID"))), index=tr.index)
    bad = (_text(tr, "TRLNKID") != "") & ~link.isin(known)
    parts = [make_findings("XR016", "ERROR", "TR", tr[bad], "TRLNKID",
                           "TRLNKID has no TU record with this TULNKID for the subject")]
    rs = ds.get("RS")
    if rs is not None and "RSLNKGRP" in rs and "TRLNKGRP" in tr:
        groups = set(zip(_text(tr, "USUBJID"), _text(tr, "TRLNKGRP")))
        grp = pd.Series(list(zip(_text(rs, "USUBJID"), _text(rs, "RSLNKGRP"))), index=rs.index)
        bad = (_text(rs, "RSLNKGRP") != "") & ~grp.isin(groups)
        parts.append(make_findings("XR016", "ERROR", "RS", rs[bad], "RSLNKGRP",
                                   "RSLNKGRP has no TR record with this TRLNKGRP for the subject"))
    return _concat(parts)


def tu_has_tr(ds: Datasets, study=None) -> pd.DataFrame:
    tu, tr = ds["TU"], ds["TR"]
    miss = _first(_missing("XR017", "TU", tu, ["USUBJID", "TULNKID"], "tumour ids absent"),
                  _missing("XR017", "TR", tr, ["USUBJID", "TRLNKID"], "tumour links absent"))
    if miss is not None:
        return miss
    measured = set(zip(_text(tr, "USUBJID"), _text(tr, "TRLNKID")))
    ident = pd.Series(list(zip(_text(tu, "USUBJID"), _text(tu, "TULNKID"))), index=tu.index)
    return make_findings("XR017", "WARNING", "TU", tu[~ident.isin(measured)], "TULNKID",
                         "identified tumour/lesion has no TR assessment")


# ---------------------------------------------------------------- trial summary

def ts_required_parameters(ds: Datasets, study=None) -> pd.DataFrame:
    """Each required TSPARMCD is present, with a TSVAL or a null flavor (TSVALNF)."""
    ts = ds["TS"]
    miss = _missing("XR018", "TS", ts, ["TSPARMCD"], "parameters unknown")
    if miss is not None:
        return miss
    code = _text(ts, "TSPARMCD")
    absent = sorted(set(TS_REQUIRED) - set(code))
    rows = pd.DataFrame({"TSPARMCD": absent})
    empty = ts[code.isin(TS_REQUIRED) & (_text(ts, "TSVAL") == "") & (_text(ts, "TSVALNF") == "")]
    return _concat([
        make_findings("XR018", "ERROR", "TS", rows, "TSPARMCD", "required TS parameter is missing"),
        make_findings("XR018", "ERROR", "TS", empty, "TSPARMCD",
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
        unit = _text(df, u)
        units = unit[unit != ""].groupby(_text(df, tc)[unit != ""]).transform("nunique")
        bad = df.loc[units.index[units > 1]]
        parts.append(make_findings("XR022", "ERROR", name, bad, u,
                                   f"{tc} " + _text(bad, tc) + f" has more than one {u} in {name}"))
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
        as_num = pd.to_numeric(_text(df, c), errors="coerce")
        stresn = pd.to_numeric(df[n], errors="coerce")
        same = np.isclose(as_num.fillna(0), stresn.fillna(0), rtol=1e-9, atol=0)
        bad = (as_num.notna() & (stresn.isna() | ~same)) | (as_num.isna() & stresn.notna())
        parts.append(make_findings("XR023", "ERROR", name, df[bad], n,
                                   f"{n} does not equal the numeric {c} '" + _text(df, c)[bad] + "'"))
    return _concat(parts)


def _char_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]


def ascii_only(ds: Datasets, study=None) -> pd.DataFrame:
    """FDA TCG: character data are ASCII (transport files are read as US-ASCII/Latin-1)."""
    parts = []
    for name, df in ds.items():
        for col in _char_columns(df):
            bad = _text(df, col).str.contains(r"[^\x00-\x7f]", regex=True)
            parts.append(make_findings("XR024", "ERROR", name, df[bad], col,
                                       f"{col} contains non-ASCII characters"))
    return _concat(parts)


def within_200_bytes(ds: Datasets, study=None) -> pd.DataFrame:
    parts = []
    for name, df in ds.items():
        for col in _char_columns(df):
            text = df[col].fillna("").astype(str)
            size = text.str.encode("utf-8").str.len() if len(text) else text.str.len()
            bad = size > MAX_BYTES
            parts.append(make_findings("XR025", "ERROR", name, df[bad], col,
                                       f"{col} is longer than {MAX_BYTES} bytes ("
                                       + size[bad].astype(str) + ")"))
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
    return _concat(r.check(ds, study) for r in RULES if all(n in ds for n in r.needs))
