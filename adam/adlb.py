"""ADLB: one record per LB result of a subject in ADSL (BDS), read top to bottom like
admiral's ad_adlb.R template.

AVAL in standard units (LBSTRESN/LBSTRESU), baseline by the shared rule of `adam/bds.py`
(last value on or before the first study treatment: RS001's Day -5 pre-lymphodepletion
sample), change, normal-range indicators, CTCAE v5.0 grades in both directions from the numeric
result (`adam/ctcae.py`: a test without a criterion in a direction has no grade in it, never
a wrong one), shifts from baseline and the worst post-baseline flags. The variables, their
order and derivation texts are the spec's (mappings/common/adam/adlb.yaml + the study's).
"""
from __future__ import annotations

import pandas as pd

from adam import bds
from adam.ctcae import (
    derive_var_atoxgr,
    derive_var_atoxgr_dir,
    derive_var_btoxgr,
    derive_vars_atoxdsc,
)
from adam.metadata import DatasetSpec, load_spec

LB_REQUIRED = ("STUDYID", "USUBJID", "LBSEQ", "LBTESTCD", "LBTEST", "LBSTRESC", "LBSTRESN", "LBSTRESU", "LBDTC")
# permissible in SDTMIG: an SDTM without them still gives ADLB (no ranges, no category, no visit)
LB_OPTIONAL = {"LBCAT": "", "LBSTNRLO": float("nan"), "LBSTNRHI": float("nan"), "LBNRIND": "",
               "VISIT": "", "VISITNUM": float("nan")}


def build_adlb(frames, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame | None:
    spec = spec or load_spec("ADLB", study.study.studyid)
    if not frames.has("LB"):
        return None
    adlb = bds.findings_records(frames, adsl, "LB", LB_REQUIRED, LB_OPTIONAL)
    adlb["PARCAT1"] = adlb["LBCAT"]
    adlb["ANRLO"], adlb["ANRHI"] = adlb["LBSTNRLO"], adlb["LBSTNRHI"]
    adlb = bds.derive_var_anrind(adlb, collected="LBNRIND")

    # baseline and change
    adlb = bds.derive_var_ablfl(adlb)
    post = bds.derive_var_postbl(adlb)
    adlb = bds.derive_vars_base(adlb, {"BASE": "AVAL", "BASEC": "AVALC", "BNRIND": "ANRIND"})
    adlb = bds.derive_var_chg(adlb, post)
    adlb = bds.derive_var_pchg(adlb)

    # CTCAE v5.0 grades (SI criteria: AVAL is in standard units); baseline grade of the ABLFL record
    # (graded on the variables the criteria read, so adam.ctcae copies a narrow frame)
    # (the unit is LBSTRESU, the one PARAM shows, given directly rather than parsed back from PARAM)
    grading = derive_vars_atoxdsc(adlb[["PARAMCD", "LBSTRESU", "AVAL", "ANRLO", "ANRHI", "BASE", "BNRIND", "PCHG"]],
                                  "PARAMCD")
    grading = derive_var_atoxgr_dir(grading, "ATOXGRL", "ATOXDSCL", "L", unit_var="LBSTRESU")
    grading = derive_var_atoxgr_dir(grading, "ATOXGRH", "ATOXDSCH", "H", unit_var="LBSTRESU")
    grading = derive_var_atoxgr(grading)
    for var in ("ATOXDSCL", "ATOXDSCH", "ATOXGRL", "ATOXGRH", "ATOXGR"):
        adlb[var] = grading[var].to_numpy()
    for src, base in (("ATOXGRL", "BTOXGRL"), ("ATOXGRH", "BTOXGRH"), ("ATOXGR", "BTOXGR")):
        adlb = derive_var_btoxgr(adlb, src, base, by_vars=("USUBJID", "PARAMCD"))
    for var in ("ATOXGRL", "ATOXGRH", "ATOXGR", "BTOXGRL", "BTOXGRH", "BTOXGR"):
        adlb = bds.derive_var_grade_n(adlb, f"{var}N", var)

    # treatment emergence (whole study to the cut-off; the study's primary window where its spec has one)
    adlb = bds.derive_var_ontrtfl(adlb, post)
    if "PRIMWFL" in spec.names:
        adlb = bds.derive_var_window_flag(adlb, "PRIMWFL", study.dlt.window_days)
    ontrt = adlb["ONTRTFL"] == "Y"

    # worst post-baseline: the highest grade, then the most extreme value, then the earliest
    graded = ontrt & adlb["AVAL"].notna()
    adlb = bds.derive_var_extreme_flag(adlb, "WORSTLFL", graded,
                                       [("ATOXGRLN", False), ("AVAL", True), ("ADTM", True), ("ADT", True),
                                        ("SRCSEQ", True)])
    adlb = bds.derive_var_extreme_flag(adlb, "WORSTHFL", graded,
                                       [("ATOXGRHN", False), ("AVAL", False), ("ADTM", True), ("ADT", True),
                                        ("SRCSEQ", True)])

    # shifts from baseline on on-treatment records: grade by direction, then normal range
    adlb = bds.derive_var_shift(adlb, "SHIFT1", "BTOXGRL", "ATOXGRL", ontrt & adlb["ATOXDSCL"].notna())
    adlb = bds.derive_var_shift(adlb, "SHIFT2", "BTOXGRH", "ATOXGRH", ontrt & adlb["ATOXDSCH"].notna())
    adlb = bds.derive_var_shift(adlb, "SHIFT3", "BNRIND", "ANRIND",
                                ontrt & ((adlb["ANRIND"] != "") | (adlb["BNRIND"] != "")))

    adlb = bds.derive_var_aseq(adlb, ["PARAMCD", "ADT", "ADTM", "VISITNUM", "SRCSEQ"])
    return adlb[spec.names]
