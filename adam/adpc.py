"""ADPC: one record per cellular-kinetics sample per method, read top to bottom like admiral's
ad_adpc.R template (admiral's PK names: AFRLT/NFRLT, ARRLT/NRRLT, FRLTU/RRLTU, PCRFTDTM,
ALLOQ, AVALU — ADaMIG 1.3 has no PK variables, so these are sponsor variables with labels).

RS001 has one infusion, so the reference dose of every sample is the first (and only) dose:
AFRLT/NFRLT are the actual/nominal times from it in DAYS (the unit of the NCA and of the
registration's endpoints), ARRLT/NRRLT the same times in HOURS (admiral keeps a unit variable
per pair, FRLTU/RRLTU, so the pair in hours is the "hours variant" without invented names).

The BLQ rule of STUDIES.md (SAP: below LLOQ before Tmax counted as 0, after Tmax excluded) is
made visible per record: BLQFL marks BLQ samples, ANL01FL the samples whose level enters the
NCA (ADPP), NCAEXCL says why a sample does not. Tmax is the NCA's (adam.nca): the first
highest quantifiable level at or before cmax_end days, the setting read from the ADPP spec so
the flags and ADPP can never use different windows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from adam.cutoff import CutoffView
from adam.dates import compute_dtm
from adam.merged import RuleError
from adam.metadata import DatasetSpec, load_spec

PC_REQUIRED = ("STUDYID", "USUBJID", "PCSEQ", "PCTESTCD", "PCTEST", "PCSTRESC", "PCSTRESN", "PCSTRESU",
               "PCDTC")
# Optional SDTMIG PC variables: used when delivered ('' / NaN otherwise).
PC_OPTIONAL_CHAR = ("PCMETHOD", "PCSPEC", "PCSTAT", "PCTPT", "PCELTM", "PCTPTREF", "VISIT")
PC_OPTIONAL_NUM = ("PCLLOQ", "PCTPTNUM", "VISITNUM", "VISITDY")
ADSL_VARS = ("SUBJID", "SITEID", "TRT01P", "TRT01PN", "TRT01A", "TRT01AN", "TRTSDT", "TRTSDTM")
# How labs write "below the limit": PCSTRESC 'BLQ', '<LLOQ', 'BQL', 'NQ', or '<' and a number.
BLQ_TEXT = r"^\s*(?:BLQ|BQL|<\s*LLOQ|NQ|BELOW LLOQ|<.*)\s*$"
_ISO_DURATION = (r"^(?P<neg>-)?P(?:(?P<W>\d+(?:\.\d+)?)W)?(?:(?P<D>\d+(?:\.\d+)?)D)?"
                 r"(?:T(?:(?P<H>\d+(?:\.\d+)?)H)?(?:(?P<M>\d+(?:\.\d+)?)M)?(?:(?P<S>\d+(?:\.\d+)?)S)?)?$")


def compute_duration_days(eltm: pd.Series) -> pd.Series:
    """ISO 8601 durations (PCELTM: 'PT0H', 'P1D', 'PT2H30M', '-PT30M') as days; NaN where the
    text is empty or not a duration."""
    parts = eltm.astype(str).str.upper().str.strip().str.extract(_ISO_DURATION)
    nums = parts[["W", "D", "H", "M", "S"]].astype(float)
    days = (nums.W.fillna(0) * 7 + nums.D.fillna(0) + nums.H.fillna(0) / 24 + nums.M.fillna(0) / 1440
            + nums.S.fillna(0) / 86400)
    days = days.where(nums.notna().any(axis=1))   # no match: every part NaN
    return days.where(parts.neg.isna(), -days)


def nca_settings(study_id: str) -> dict:
    """The NCA settings of the study (ADPP spec, AVAL rule): cmax_end, auc_end, ..."""
    return dict(load_spec("ADPP", study_id).var("AVAL").rule or {})


def _pc(frames) -> pd.DataFrame:
    pc = frames.get("PC", PC_REQUIRED).copy()
    for v in PC_OPTIONAL_CHAR:
        if v not in pc.columns:
            pc[v] = ""
    for v in PC_OPTIONAL_NUM:
        if v not in pc.columns:
            pc[v] = np.nan
    return pc


def derive_vars_params(pc: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """PARAMCD/PARAM/PARAMN/PARCAT1 per analyte and method from the spec's PARAMCD rule
    (params: [{PCTESTCD, PCMETHOD, PARAMCD, PARAM, PARAMN, unit, method}]); the unit in PARAM is
    checked against PCSTRESU so a PARAM never states a unit the values are not in."""
    rows = (spec.var("PARAMCD").rule or {}).get("params", [])
    table = pd.DataFrame(rows, columns=["PCTESTCD", "PCMETHOD", "PARAMCD", "PARAM", "PARAMN", "unit", "method"])
    out = pc.merge(table.rename(columns={"unit": "_UNIT", "method": "PARCAT1"}), on=["PCTESTCD", "PCMETHOD"],
                   how="left", validate="many_to_one")
    unmapped = out[out.PARAMCD.isna()]
    if len(unmapped):
        r = unmapped.iloc[0]
        raise RuleError(f"PC test {r.PCTESTCD!r} by method {r.PCMETHOD!r} has no ADPC parameter "
                        f"(subject {r.USUBJID}, PCSEQ {r.PCSEQ:g})", file=spec.sources[-1], field="PARAMCD",
                        hint="add it to the PARAMCD rule's params: with PARAMCD, PARAM, PARAMN, unit and method")
    wrong = out[(out.PCSTRESU != "") & (out.PCSTRESU != out._UNIT)]
    if len(wrong):
        r = wrong.iloc[0]
        raise RuleError(f"PC {r.PCTESTCD} result in {r.PCSTRESU!r}, but ADPC states {r._UNIT!r} "
                        f"(subject {r.USUBJID}, PCSEQ {r.PCSEQ:g})", file=spec.sources[-1], field="PCSTRESU",
                        hint="standardise PCSTRESU in SDTM or correct unit: in the ADPC spec")
    out["PARAM"] = out.PARAM + " (" + out._UNIT + ")"
    out["AVALU"] = out._UNIT
    return out.drop(columns="_UNIT")


def derive_vars_times(adpc: pd.DataFrame) -> pd.DataFrame:
    """ADTM/ADT/ATMF/ADY from PCDTC, and the relative times from the infusion (TRTSDTM)."""
    out = adpc.copy()
    # A date without a time gets 00:00 (admiral's ad_adpc.R: time_imputation 00:00:00), flagged
    adtm, _, atmf = compute_dtm(out.PCDTC, "h")
    out["ADTM"], out["ATMF"] = adtm, atmf
    out["ADT"] = adtm.dt.normalize()
    days = (out.ADT - out.TRTSDT).dt.days
    out["ADY"] = np.where(days >= 0, days + 1, days)    # SDTMIG/admiral study day: no day 0
    out["PCRFTDTM"] = out.TRTSDTM
    out["AFRLT"] = (out.ADTM - out.PCRFTDTM).dt.total_seconds() / 86400.0
    # Nominal time: the planned elapsed time PCELTM (relative to PCTPTREF, the infusion); when
    # absent, the planned study day of the visit (VISITDY 1 is Day 0: no day 0 in --DY)
    eltm = compute_duration_days(out.PCELTM)
    vday = out.VISITDY.where(out.VISITDY < 1, out.VISITDY - 1)
    out["NFRLT"] = eltm.fillna(vday)
    out["ARRLT"], out["NRRLT"] = out.AFRLT * 24.0, out.NFRLT * 24.0
    out["FRLTU"], out["RRLTU"] = "DAYS", "HOURS"
    return out


def derive_var_blqfl(adpc: pd.DataFrame) -> pd.DataFrame:
    """BLQFL = Y for a sample reported below the limit (PCSTRESC 'BLQ', '<LLOQ', ... with no
    numeric result) or with a numeric result below PCLLOQ; AVAL is then missing, AVALC the text."""
    out = adpc.copy()
    text_blq = out.PCSTRESN.isna() & out.PCSTRESC.str.upper().str.match(BLQ_TEXT)
    below = out.PCSTRESN.notna() & out.PCLLOQ.notna() & (out.PCSTRESN < out.PCLLOQ)
    zero = out.PCSTRESN.notna() & (out.PCSTRESN <= 0)   # a level of 0 is never quantifiable (adam.nca)
    out["BLQFL"] = np.where(text_blq | below | zero, "Y", "")
    out["AVAL"] = out.PCSTRESN.where(out.BLQFL != "Y")
    out["AVALC"] = np.where(out.BLQFL == "Y", "BLQ", out.PCSTRESC)
    out["ALLOQ"] = out.PCLLOQ
    return out


def derive_var_anl01fl(adpc: pd.DataFrame, cmax_end: float | None) -> pd.DataFrame:
    """ANL01FL = Y for the samples whose level the NCA uses, NCAEXCL the reason for the others.

    Per profile (subject x parameter) Tmax is the first time of the highest quantifiable level
    at or before `cmax_end` (as adam.nca). Pre-infusion samples are not used: the NCA assumes a
    level of 0 at the infusion (no cells before it). BLQ at or before Tmax counts as 0 (used);
    BLQ after Tmax is excluded (STUDIES.md; the NCA still sees it, as it stops the Cmax/2
    interpolation across it)."""
    out = adpc.copy()
    quant = out.AVAL.notna() & (out.BLQFL != "Y")
    post = out.AFRLT.notna() & (out.AFRLT >= 0)
    in_win = quant & post
    if cmax_end is not None:
        in_win &= out.AFRLT <= cmax_end
    cand = out[in_win].sort_values(["USUBJID", "PARAMCD", "AFRLT"], kind="stable")
    # first occurrence of the maximum: sort by level descending, time ascending, keep the first
    best = cand.sort_values(["USUBJID", "PARAMCD", "AVAL", "AFRLT"], ascending=[True, True, False, True],
                            kind="stable").drop_duplicates(["USUBJID", "PARAMCD"])
    tmax = out[["USUBJID", "PARAMCD"]].merge(best[["USUBJID", "PARAMCD", "AFRLT"]].rename(columns={"AFRLT": "_TMAX"}),
                                             on=["USUBJID", "PARAMCD"], how="left")["_TMAX"].to_numpy()
    blq = out.BLQFL == "Y"
    has_result = quant | blq
    not_done = (out.PCSTAT == "NOT DONE") | ~has_result
    reasons = [
        (out.TRTSDTM.isna(), "no RS001 infusion (no reference time)"),
        (not_done, "no result (sample not done or missing)"),
        (out.AFRLT.isna(), "no actual sample time (PCDTC missing)"),
        (out.AFRLT < 0, "pre-infusion sample (the NCA assumes level 0 at the infusion)"),
        (blq & np.isnan(tmax), "BLQ in a profile with no quantifiable level"),
        (blq & (out.AFRLT > tmax), "BLQ after Tmax: excluded (SAP)"),
    ]
    out["NCAEXCL"] = np.select([c.to_numpy() for c, _ in reasons], [r for _, r in reasons], default="")
    out["ANL01FL"] = np.where(out.NCAEXCL == "", "Y", "")
    return out


def build_adpc(frames: CutoffView, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None
               ) -> pd.DataFrame | None:
    """ADPC of the study, or None when the SDTM has no PC data (GLOCART)."""
    if not frames.has("PC") or frames.get("PC").empty:
        return None
    study_id = study.study.studyid
    spec = spec or load_spec("ADPC", study_id)
    pc = _pc(frames)
    unknown = sorted(set(pc.USUBJID) - set(adsl.USUBJID))
    if unknown:
        raise RuleError(f"PC has {len(unknown)} subject(s) not in DM/ADSL, e.g. {unknown[0]}", file="PC",
                        field="USUBJID", hint="fix USUBJID in PC or deliver the subject's DM record")
    adpc = pc.merge(adsl[["USUBJID", *ADSL_VARS]], on="USUBJID", how="left")
    adpc = derive_vars_params(adpc, spec)
    adpc = derive_vars_times(adpc)
    adpc = derive_var_blqfl(adpc)
    adpc = derive_var_anl01fl(adpc, nca_settings(study_id).get("cmax_end"))
    adpc = adpc.assign(ATPT=adpc.PCTPT, ATPTN=adpc.PCTPTNUM, ATPTREF=adpc.PCTPTREF, AVISIT=adpc.VISIT,
                       AVISITN=adpc.VISITNUM, PARCAT2=adpc.PCSPEC,
                       SRCDOM="PC", SRCVAR="PCSTRESN", SRCSEQ=adpc.PCSEQ)
    adpc = adpc.sort_values(["USUBJID", "PARAMN", "ADTM", "SRCSEQ"], kind="stable", na_position="last")
    adpc["ASEQ"] = adpc.groupby("USUBJID").cumcount() + 1.0
    return adpc.reset_index(drop=True)[spec.names]
