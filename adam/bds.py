"""Shared derivations of the findings BDS datasets (ADLB, ADVS, ADEG), in admiral's grammar.

Each function takes the dataset first and returns a copy with the variable(s) it names; no
per-record Python. The builders (`adam/adlb.py`, `adam/advs.py`, `adam/adeg.py`) read top to
bottom as a recipe of these.

Reference dates (one set for all three datasets, stated in the specs' derivation texts):
- **Baseline reference** = the first study treatment of any kind, DM.RFXSTDTC (SDTMIG: the
  first exposure to study treatment). For RS001 that is the start of FC lymphodepletion, so
  the safety baseline is the Day -5 pre-dose sample, not a Day 0 value already depressed by
  fludarabine/cyclophosphamide (as SDTM LBLOBXFL, and as CAR-T labels report cytopenias);
  for GLOCART the first glofitamab-based dose (obinutuzumab C1D1). Without RFXSTDTC, ADSL
  TRTSDTM (or TRTSDT) stands in.
- **Treatment emergence** starts at ADSL.TRTSDT (RS001 infusion, Day 0; GLOCART first
  glofitamab-based dose); ADY counts from it (no day 0).

"On or before" a reference is decided on the date, and refined by the time of day only where
both the record and the reference have one: a sample dated on the reference day without a
time counts as pre-dose (the protocols draw dosing-day samples before the dose) unless its
time point (--TPT) starts with POST; on the first day of treatment emergence an untimed
record whose time point starts with PRE is not on treatment.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from adam.dates import compute_dt, compute_dtm, compute_study_day
from adam.metadata import DatasetSpec
from adam.read import SdtmInputError

METADATA_DIR = Path(__file__).resolve().parent / "metadata"
BY = ["USUBJID", "PARAMCD"]


def _by_value(values: pd.Series, fn) -> pd.Series:
    """`fn` applied to each distinct value once and mapped back: SDTM text repeats heavily
    (units, visits, time points), so this is the fast form of a vectorised string method."""
    uniq = pd.Series(values.unique())
    return values.map(dict(zip(uniq, fn(uniq.astype(str)), strict=True)))


# --- input checks ------------------------------------------------------------------------------

def check_subjects_in_dm(findings: pd.DataFrame, dm: pd.DataFrame, dataset: str, file=None) -> None:
    """A result for a subject not in DM cannot be analysed (no treatment, no population): an
    error naming the dataset and the first such subject."""
    unknown = findings.loc[~findings["USUBJID"].isin(dm["USUBJID"]), "USUBJID"]
    if len(unknown):
        subjects = sorted(unknown.unique())
        raise SdtmInputError(
            f"{len(unknown)} {dataset} record(s) of {len(subjects)} subject(s) not in DM "
            f"(first: {subjects[0]})", file=file or dataset, record=f"USUBJID {subjects[0]}", field="USUBJID",
            hint=f"add the subject to DM or remove the {dataset} records; the SDTM must be fixed at its source")


def check_units(findings: pd.DataFrame, dataset: str, file=None) -> None:
    """A numeric result without a standard unit is an error: its parameter (PARAM carries the
    unit) and its CTCAE grade (criteria are unit-specific) would be guesses."""
    d = dataset
    bad = findings[f"{d}STRESN"].notna() & (_by_value(findings[f"{d}STRESU"], lambda u: u.str.strip()) == "")
    if bad.any():
        first = findings[bad].iloc[0]
        raise SdtmInputError(
            f"{int(bad.sum())} numeric {d} result(s) have no standard unit {d}STRESU (first: "
            f"{first['USUBJID']} {d}SEQ {first[f'{d}SEQ']:.0f} {d}TESTCD {first[f'{d}TESTCD']})",
            file=file or dataset, record=f"{first['USUBJID']} {d}SEQ {first[f'{d}SEQ']:.0f}",
            field=f"{d}STRESU", hint=f"give {d}STRESU for every {d}STRESN (SDTMIG 3.4) and re-deliver")


# --- parameters and values ---------------------------------------------------------------------

def derive_vars_param(dataset: pd.DataFrame, domain: str, file=None) -> pd.DataFrame:
    """Add PARAMCD (--TESTCD), PARAM (--TEST with the standard unit in parentheses, as admiral's
    `extract_unit(PARAM)` reads it back for CTCAE) and PARAMN (order of PARAMCD). A test with
    two names or two standard units would give PARAMCD two PARAMs: an error naming it."""
    d = domain
    out = dataset.copy(deep=False)
    unit = out[f"{d}STRESU"] = _by_value(out[f"{d}STRESU"], lambda u: u.str.strip())
    # a NOT DONE record has no unit: it takes its test's unit so the test stays one parameter
    per_test = out.loc[unit != "", [f"{d}TESTCD", f"{d}STRESU"]].drop_duplicates()
    for what, table in (("standard unit", per_test),
                        ("name", out[[f"{d}TESTCD", f"{d}TEST"]].drop_duplicates())):
        dup = table[f"{d}TESTCD"].duplicated(keep=False)
        if dup.any():
            code = table.loc[dup, f"{d}TESTCD"].iloc[0]
            values = ", ".join(sorted(table.loc[table[f"{d}TESTCD"] == code].iloc[:, 1]))
            raise SdtmInputError(f"{d}TESTCD {code} has more than one {what} ({values}), so PARAMCD "
                                 "would not be one-to-one with PARAM", file=file or d, field=f"{d}TESTCD",
                                 hint=f"standardise the test to one {what} in {d} (or give each its own {d}TESTCD)")
    test_unit = out[f"{d}TESTCD"].map(per_test.set_index(f"{d}TESTCD")[f"{d}STRESU"]).fillna("")
    out["PARAMCD"] = out[f"{d}TESTCD"]
    out["PARAM"] = out[f"{d}TEST"] + np.where(test_unit != "", " (" + test_unit + ")", "")
    codes = sorted(out["PARAMCD"].unique())
    out["PARAMN"] = out["PARAMCD"].map({c: float(i + 1) for i, c in enumerate(codes)})
    return out


def derive_vars_aval(dataset: pd.DataFrame, domain: str) -> pd.DataFrame:
    """AVAL = --STRESN; AVALC = --STRESC only where the result is text ("<5", "POSITIVE"),
    as admiral (a numeric result is not repeated as text). SRCDOM/SRCVAR/SRCSEQ name the
    SDTM value each record comes from."""
    d = domain
    out = dataset.copy(deep=False)
    out["AVAL"] = out[f"{d}STRESN"]
    stresc = _by_value(out[f"{d}STRESC"], lambda c: c.str.strip())
    text = out["AVAL"].isna() & (stresc != "")
    out["AVALC"] = np.where(text, stresc, "")
    out["SRCDOM"] = d
    out["SRCVAR"] = np.where(text, f"{d}STRESC", f"{d}STRESN")
    out["SRCSEQ"] = out[f"{d}SEQ"]
    return out


def derive_vars_adt(dataset: pd.DataFrame, dtc: str) -> pd.DataFrame:
    """ADT (date of --DTC, no imputation: a partial date gives none) and ADTM (with its time;
    missing without one). Seconds are set to 00 where only hours:minutes were collected, which
    ADaMIG says needs no ATMF."""
    out = dataset.copy(deep=False)
    out["ADT"] = compute_dt(out[dtc], "n")[0]
    out["ADTM"] = compute_dtm(out[dtc], "s")[0]
    return out


def derive_var_ady(dataset: pd.DataFrame, ref: str = "TRTSDT") -> pd.DataFrame:
    """ADY = ADT - ref + 1 on or after the reference, ADT - ref before (no day 0)."""
    out = dataset.copy(deep=False)
    out["ADY"] = compute_study_day(out["ADT"], out[ref]).to_numpy()
    return out


def derive_vars_avisit(dataset: pd.DataFrame, tpt: str | None = None) -> pd.DataFrame:
    """AVISIT/AVISITN = VISIT/VISITNUM for scheduled visits; an unscheduled visit has none
    (not windowed into a scheduled one), but its values still count for baseline and worst.
    ATPT/ATPTN = --TPT/--TPTNUM where the domain has them (Day 0 pre/post-infusion)."""
    out = dataset.copy(deep=False)
    visit = out["VISIT"] if "VISIT" in out.columns else pd.Series("", index=out.index)
    vnum = out["VISITNUM"] if "VISITNUM" in out.columns else pd.Series(np.nan, index=out.index)
    unsched = _by_value(visit, lambda v: v.str.upper().str.startswith("UNSCHED") | (v == "")).astype(bool)
    out["AVISIT"] = np.where(unsched, "", visit)
    out["AVISITN"] = vnum.where(~unsched)
    if tpt is not None:
        out["ATPT"] = out[tpt] if tpt in out.columns else ""
        out["ATPTN"] = out[f"{tpt}NUM"] if f"{tpt}NUM" in out.columns else np.nan
    return out


def derive_vars_adsl(dataset: pd.DataFrame, adsl: pd.DataFrame, new_vars: dict[str, str]) -> pd.DataFrame:
    """Add ADSL variables ({new name: ADSL variable}) by USUBJID; keeps the dataset's rows
    (records of subjects not in ADSL are dropped first by the builder)."""
    # column by column: one ADSL variable may be wanted under two names
    cols = {"USUBJID": adsl["USUBJID"]}
    for new, src in new_vars.items():
        cols[new] = adsl[src]
    picked = pd.DataFrame(cols)
    return dataset.drop(columns=[c for c in new_vars if c in dataset.columns]).merge(picked, on="USUBJID",
                                                                                    how="left")


# --- reference dates ---------------------------------------------------------------------------

def compute_baseline_ref(dm: pd.DataFrame, adsl: pd.DataFrame) -> pd.DataFrame:
    """Per USUBJID the baseline reference date and datetime (BLREFDT/BLREFDTM): DM.RFXSTDTC,
    else ADSL TRTSDTM, else TRTSDT (see the module docstring for why)."""
    ref = adsl[["USUBJID"]].copy()
    trtsdt = pd.to_datetime(adsl["TRTSDT"]) if "TRTSDT" in adsl.columns else pd.Series(pd.NaT, index=adsl.index)
    trtsdtm = (pd.to_datetime(adsl["TRTSDTM"]) if "TRTSDTM" in adsl.columns
               else pd.Series(pd.NaT, index=adsl.index))
    if "RFXSTDTC" in dm.columns:
        rfx = dm.drop_duplicates("USUBJID").set_index("USUBJID")["RFXSTDTC"]
        dtc = adsl["USUBJID"].map(rfx).fillna("")
        rdt, rdtm = compute_dt(dtc, "n")[0], compute_dtm(dtc, "s")[0]
    else:
        rdt = rdtm = pd.Series(pd.NaT, index=adsl.index)
    use_rfx = rdt.notna()
    ref["BLREFDT"] = rdt.where(use_rfx, trtsdt.dt.normalize())
    ref["BLREFDTM"] = rdtm.where(use_rfx, trtsdtm)
    return ref


def _timepoint(dataset: pd.DataFrame, prefix: str) -> pd.Series:
    """The record's planned time point says it is before ("PRE-INFUSION", "PREDOSE") or
    after ("POST-INFUSION") the dose: the only clue for an untimed result on a dosing day."""
    tpt = dataset["ATPT"] if "ATPT" in dataset.columns else pd.Series("", index=dataset.index)
    return _by_value(tpt, lambda t: t.str.upper().str.startswith(prefix)).astype(bool)


def _on_or_before(dataset: pd.DataFrame, ref_dt: str, ref_dtm: str) -> pd.Series:
    """The record is on or before the reference: by date; on the reference day by time where
    both have one, else pre-dose unless its time point says post-dose."""
    adt, rdt = dataset["ADT"], pd.to_datetime(dataset[ref_dt])
    adtm, rdtm = dataset["ADTM"], pd.to_datetime(dataset[ref_dtm])
    timed = adtm.notna() & rdtm.notna()
    same_day_later = (adt == rdt) & ((timed & (adtm > rdtm)) | (~timed & _timepoint(dataset, "POST")))
    return (adt.notna() & rdt.notna() & (adt <= rdt) & ~same_day_later).fillna(False)


def derive_var_ablfl(dataset: pd.DataFrame, ref_dt: str = "BLREFDT", ref_dtm: str = "BLREFDTM",
                     by: list[str] = BY) -> pd.DataFrame:
    """ABLFL = "Y" on the last record with a value (AVAL or AVALC) on or before the baseline
    reference, per subject and parameter (ties on the time: the higher visit number, then
    --SEQ); no record qualifies -> no baseline."""
    out = dataset.copy(deep=False)
    has_value = out["AVAL"].notna() | (out["AVALC"] != "")
    cand = out[has_value & _on_or_before(out, ref_dt, ref_dtm)]
    order = [c for c in ("ADT", "ADTM", "VISITNUM", "ATPTN", "SRCSEQ") if c in cand.columns]
    last = cand.sort_values([*by, *order], na_position="first", kind="stable").drop_duplicates(by, keep="last")
    out["ABLFL"] = np.where(out.index.isin(last.index), "Y", "")
    return out


def derive_var_postbl(dataset: pd.DataFrame, ref_dt: str = "BLREFDT", ref_dtm: str = "BLREFDTM") -> pd.Series:
    """True for records after the baseline reference (dated, not on or before it)."""
    return dataset["ADT"].notna() & ~_on_or_before(dataset, ref_dt, ref_dtm)


def derive_vars_base(dataset: pd.DataFrame, pairs: dict[str, str], by: list[str] = BY) -> pd.DataFrame:
    """Add baseline variables {new: source} (BASE from AVAL, BASEC from AVALC, BNRIND from
    ANRIND...) from the ABLFL record of each subject and parameter."""
    out = dataset.copy(deep=False)
    base = out.loc[out["ABLFL"] == "Y", [*by, *pairs.values()]]
    base = pd.DataFrame({**{b: base[b] for b in by}, **{new: base[src] for new, src in pairs.items()}})
    merged = out[by].merge(base, on=by, how="left")
    for new, src in pairs.items():
        values = merged[new].to_numpy()
        out[new] = values if out[src].dtype.kind == "f" else pd.Series(values).fillna("").to_numpy()
    return out


def derive_var_chg(dataset: pd.DataFrame, post: pd.Series) -> pd.DataFrame:
    """CHG = AVAL - BASE on post-baseline records (missing on baseline and before it)."""
    out = dataset.copy(deep=False)
    out["CHG"] = (out["AVAL"] - out["BASE"]).where(post.to_numpy())
    return out


def derive_var_pchg(dataset: pd.DataFrame) -> pd.DataFrame:
    """PCHG = 100 x CHG / BASE; missing when BASE is 0 (undefined, never inf)."""
    out = dataset.copy(deep=False)
    base = out["BASE"].where(out["BASE"] != 0)
    out["PCHG"] = 100 * out["CHG"] / base
    return out


def derive_var_anrind(dataset: pd.DataFrame, collected: str | None = None) -> pd.DataFrame:
    """ANRIND from AVAL and the analysis range: LOW below ANRLO, HIGH above ANRHI, NORMAL
    within (a bound that is missing is not checked); where AVAL is missing (a text result),
    the collected --NRIND."""
    out = dataset.copy(deep=False)
    aval, lo, hi = out["AVAL"], out["ANRLO"], out["ANRHI"]
    has_range = lo.notna() | hi.notna()
    ind = np.select([aval.notna() & lo.notna() & (aval < lo), aval.notna() & hi.notna() & (aval > hi),
                     aval.notna() & has_range], ["LOW", "HIGH", "NORMAL"], default="")
    if collected is not None and collected in out.columns:
        ind = np.where(aval.isna(), out[collected], ind)
    out["ANRIND"] = ind
    return out


def derive_var_ontrtfl(dataset: pd.DataFrame, post: pd.Series, start_dt: str = "TRTSDT",
                       start_dtm: str = "TRTSDTM") -> pd.DataFrame:
    """ONTRTFL = "Y" on post-baseline records on or after the start of treatment emergence
    (STUDIES.md: on/after Day 0) up to the data cut-off (later records are already out); on
    the start day a record timed at or before a timed start is not, nor an untimed one whose
    time point says pre-dose (Day 0 PRE-INFUSION ECG)."""
    out = dataset.copy(deep=False)
    sdt = pd.to_datetime(out[start_dt])
    sdtm = pd.to_datetime(out[start_dtm]) if start_dtm in out.columns else pd.Series(pd.NaT, index=out.index)
    timed = out["ADTM"].notna() & sdtm.notna()
    pre_dose = (out["ADT"] == sdt) & ((timed & (out["ADTM"] <= sdtm)) | (~timed & _timepoint(out, "PRE")))
    on = post & sdt.notna() & (out["ADT"] >= sdt) & ~pre_dose
    out["ONTRTFL"] = np.where(on.fillna(False), "Y", "")
    return out


def derive_var_window_flag(dataset: pd.DataFrame, new_var: str, days: int, start_dt: str = "TRTSDT") -> pd.DataFrame:
    """`new_var` = "Y" on on-treatment records up to Day `days` (Day 0 = `start_dt`), e.g.
    the Day 0-28 window of RS001's primary safety analysis (study.yaml dlt.window_days)."""
    out = dataset.copy(deep=False)
    end = pd.to_datetime(out[start_dt]) + pd.to_timedelta(days, unit="D")
    out[new_var] = np.where((out["ONTRTFL"] == "Y") & (out["ADT"] <= end), "Y", "")
    return out


def derive_var_extreme_flag(dataset: pd.DataFrame, new_var: str, where: pd.Series,
                            order: list[tuple[str, bool]], by: list[str] = BY) -> pd.DataFrame:
    """`new_var` = "Y" on the first record per `by` among those meeting `where`, sorted by
    `order` [(variable, ascending)]; missing values sort last, so a value beats none. Ties
    are broken by the order's later variables (then the record's place), one flag per group."""
    out = dataset.copy(deep=False)
    rows = out[where.to_numpy()]
    names, asc = [*by, *(v for v, _ in order)], [True] * len(by) + [a for _, a in order]
    first = rows.sort_values(names, ascending=asc, na_position="last", kind="stable").drop_duplicates(by)
    out[new_var] = np.where(out.index.isin(first.index), "Y", "")
    return out


def derive_var_shift(dataset: pd.DataFrame, new_var: str, from_var: str, to_var: str, where: pd.Series,
                     missing: str = "MISSING") -> pd.DataFrame:
    """`new_var` = "<from> to <to>" (admiral's derive_var_shift) on records meeting `where`;
    a missing side reads `missing`."""
    out = dataset.copy(deep=False)
    f = out[from_var].astype(object).where(out[from_var].notna(), "").astype(str).replace("", missing)
    t = out[to_var].astype(object).where(out[to_var].notna(), "").astype(str).replace("", missing)
    out[new_var] = np.where(where.to_numpy(), f + " to " + t, "")
    return out


def derive_var_grade_n(dataset: pd.DataFrame, new_var: str, source: str) -> pd.DataFrame:
    """Numeric form of a grade ("0".."4", "-1".."-4" for ATOXGR -> numbers; missing stays missing)."""
    out = dataset.copy(deep=False)
    out[new_var] = out[source].map({str(g): float(g) for g in range(-4, 5)}).astype(float)
    return out


def derive_var_aseq(dataset: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Sort by USUBJID and `order`; ASEQ = 1, 2, ... within each subject."""
    out = dataset.sort_values(["USUBJID", *order], na_position="last", kind="stable").reset_index(drop=True)
    out["ASEQ"] = (out.groupby("USUBJID").cumcount() + 1).astype(float)
    return out


# --- abnormality criteria as data (ADVS, ADEG) -------------------------------------------------

CRITERIA_FILE = METADATA_DIR / "vs_eg_abnormal.csv"
_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def abnormal_criteria(domain: str, path: Path = CRITERIA_FILE) -> list[dict]:
    """The criteria rows of `domain` from vs_eg_abnormal.csv (each cited in its `source`)."""
    with Path(path).open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["domain"] == domain]
    for r in rows:
        if r["operator"] not in _OPS or r["variable"] not in ("AVAL", "CHG"):
            raise ValueError(f"{path}: criterion {r['crit']!r}: operator is one of {', '.join(_OPS)}, "
                             "variable AVAL or CHG")
        r["y"], r["value"] = int(r["y"]), float(r["value"])
    return rows


def max_crit(domain: str) -> int:
    return max((r["y"] for r in abnormal_criteria(domain)), default=0)


def derive_vars_crit(dataset: pd.DataFrame, criteria: list[dict], n: int) -> pd.DataFrame:
    """CRITy / CRITyFL (ADaMIG 1.3 analysis criteria) for y = 1..n: on the records of the
    criterion's parameter, CRITy is its text and CRITyFL "Y" when it holds, "N" when it does
    not, empty when it cannot be judged (the value, or for a change the baseline, missing; or
    the record's unit is not the criterion's). A parameter without a criterion y has neither."""
    out = dataset.copy(deep=False)
    unit = out["PARAM"].str.extract(r"\(([^()]*)\)\s*$", expand=False).fillna("")
    for y in range(1, n + 1):
        text = np.full(len(out), "", dtype=object)
        flag = np.full(len(out), "", dtype=object)
        for c in (c for c in criteria if c["y"] == y):
            rows = (out["PARAMCD"] == c["paramcd"]).to_numpy()
            text[rows] = c["crit"]
            value = out[c["variable"]].to_numpy(dtype=float)
            judged = rows & ~np.isnan(value) & (unit == c["unit"]).to_numpy()
            with np.errstate(invalid="ignore"):
                holds = _OPS[c["operator"]](value, c["value"])
            flag[judged] = np.where(holds[judged], "Y", "N")
        out[f"CRIT{y}"], out[f"CRIT{y}FL"] = text, flag
    return out


# --- the common start of a findings BDS --------------------------------------------------------

ADSL_VARS = {"SUBJID": "SUBJID", "SITEID": "SITEID", "TRTA": "TRT01A", "TRTAN": "TRT01AN", "SAFFL": "SAFFL",
             "TRTSDT": "TRTSDT", "TRTSDTM": "TRTSDTM"}


def findings_records(frames, adsl: pd.DataFrame, domain: str, required: tuple[str, ...],
                     optional: dict | None = None) -> pd.DataFrame:
    """One record per result of the findings `domain` (as of the cut-off) of a subject in
    ADSL, with PARAMCD/PARAM/PARAMN, AVAL/AVALC, SRC*, ADT/ADTM, ADY, AVISIT(N), ATPT(N),
    the ADSL variables and the baseline reference (BLREFDT/BLREFDTM, dropped by the spec).
    Checks first: every subject in DM, every numeric result with a unit. `optional` gives
    defaults for permissible variables an SDTM may lack."""
    d = domain
    df = frames.get(d, required)
    # only what the derivations read: every later step copies less
    df = df[[c for c in dict.fromkeys((*required, *(optional or {}))) if c in df.columns]].copy()
    for var, default in (optional or {}).items():
        if var not in df.columns:
            df[var] = default
    dm = frames.get("DM", ("USUBJID",))
    file = getattr(getattr(frames, "sdtm", None), "files", {}).get(d, d)
    check_subjects_in_dm(df, dm, d, file)
    check_units(df, d, file)
    df = df[df["USUBJID"].isin(adsl["USUBJID"])].reset_index(drop=True)
    df = derive_vars_param(df, d, file)
    df = derive_vars_aval(df, d)
    df = derive_vars_adt(df, f"{d}DTC")
    df = derive_vars_adsl(df, adsl, {k: v for k, v in ADSL_VARS.items() if v in adsl.columns})
    for var in ("TRTSDT", "TRTSDTM"):
        if var not in df.columns:
            df[var] = pd.NaT
    df = derive_var_ady(df, "TRTSDT")
    df = derive_vars_avisit(df, f"{d}TPT" if f"{d}TPT" in df.columns else None)
    return df.merge(compute_baseline_ref(dm, adsl), on="USUBJID", how="left")


def build_measurements(frames, study, adsl: pd.DataFrame, spec: DatasetSpec, domain: str,
                       base: dict[str, str]) -> pd.DataFrame | None:
    """The recipe ADVS and ADEG share (one record per --STRESN result): baseline, change, the
    cited abnormality criteria (vs_eg_abnormal.csv), on-treatment, worst values both ways."""
    if not frames.has(domain):
        return None
    d = domain
    required = ("STUDYID", "USUBJID", f"{d}SEQ", f"{d}TESTCD", f"{d}TEST", f"{d}STRESC", f"{d}STRESN",
                f"{d}STRESU", f"{d}DTC")
    optional = {"VISIT": "", "VISITNUM": float("nan"), f"{d}TPT": "", f"{d}TPTNUM": float("nan")}
    out = findings_records(frames, adsl, d, required, optional)

    # baseline and change
    out = derive_var_ablfl(out)
    post = derive_var_postbl(out)
    out = derive_vars_base(out, base)
    out = derive_var_chg(out, post)
    out = derive_var_pchg(out)

    # abnormality criteria as data, cited in vs_eg_abnormal.csv
    out = derive_vars_crit(out, abnormal_criteria(d), max_crit(d))

    # treatment emergence and the worst post-baseline value in each direction
    out = derive_var_ontrtfl(out, post)
    if "PRIMWFL" in spec.names:
        out = derive_var_window_flag(out, "PRIMWFL", study.dlt.window_days)
    valued = (out["ONTRTFL"] == "Y") & out["AVAL"].notna()
    tie = [("ADTM", True), ("ADT", True), ("SRCSEQ", True)]
    out = derive_var_extreme_flag(out, "WORSTLFL", valued, [("AVAL", True), *tie])
    out = derive_var_extreme_flag(out, "WORSTHFL", valued, [("AVAL", False), *tie])

    out = derive_var_aseq(out, ["PARAMCD", "ADT", "ADTM", "VISITNUM", "ATPTN", "SRCSEQ"])
    return out[spec.names]
