"""ADEG: one record per EG result of a subject in ADSL (BDS), read top to bottom like
admiral's ad_adeg.R template.

Baseline by the shared rule of `adam/bds.py` (last value on or before the first study
treatment), change from baseline, and the abnormality criteria of the registration's
"incidence of ECG abnormalities" as ADaMIG CRITy/CRITyFL, from the cited criteria in
`adam/metadata/vs_eg_abnormal.csv` (QTcF >450/>480/>500 ms and increases >30/>60 ms, ICH E14 and CTCAE v5.0);
worst post-baseline value flags in each direction.
"""
from __future__ import annotations

import pandas as pd

from adam import bds
from adam.metadata import DatasetSpec, load_spec

EG_REQUIRED = ("STUDYID", "USUBJID", "EGSEQ", "EGTESTCD", "EGTEST", "EGSTRESC", "EGSTRESN", "EGSTRESU", "EGDTC")
EG_OPTIONAL = {"VISIT": "", "VISITNUM": float("nan"), "EGTPT": "", "EGTPTNUM": float("nan")}


def build_adeg(frames, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame | None:
    spec = spec or load_spec("ADEG", study.study.studyid)
    if not frames.has("EG"):
        return None
    adeg = bds.findings_records(frames, adsl, "EG", EG_REQUIRED, EG_OPTIONAL)

    # baseline and change
    adeg = bds.derive_var_ablfl(adeg)
    post = bds.derive_var_postbl(adeg)
    adeg = bds.derive_vars_base(adeg, {"BASE": "AVAL", "BASEC": "AVALC"})
    adeg = bds.derive_var_chg(adeg, post)
    adeg = bds.derive_var_pchg(adeg)

    # abnormality criteria as data, cited in vs_eg_abnormal.csv
    adeg = bds.derive_vars_crit(adeg, bds.abnormal_criteria("EG"), bds.max_crit("EG"))

    # treatment emergence and the worst post-baseline value in each direction
    adeg = bds.derive_var_ontrtfl(adeg, post)
    if "PRIMWFL" in spec.names:
        adeg = bds.derive_var_window_flag(adeg, "PRIMWFL", study.dlt.window_days)
    valued = (adeg["ONTRTFL"] == "Y") & adeg["AVAL"].notna()
    tie = [("ADTM", True), ("ADT", True), ("SRCSEQ", True)]
    adeg = bds.derive_var_extreme_flag(adeg, "WORSTLFL", valued, [("AVAL", True), *tie])
    adeg = bds.derive_var_extreme_flag(adeg, "WORSTHFL", valued, [("AVAL", False), *tie])

    adeg = bds.derive_var_aseq(adeg, ["PARAMCD", "ADT", "ADTM", "VISITNUM", "ATPTN", "SRCSEQ"])
    return adeg[spec.names]
