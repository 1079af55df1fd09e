"""ADVS: one record per VS result of a subject in ADSL (BDS), read top to bottom like
admiral's ad_advs.R template.

Baseline by the shared rule of `adam/bds.py` (last value on or before the first study
treatment), change from baseline, and the abnormality criteria of the registration's
"incidence of vital-sign abnormalities" as ADaMIG CRITy/CRITyFL, from the cited criteria in
`adam/metadata/vs_eg_abnormal.csv` (hypertension and fever by CTCAE v5.0, hypotension, hypoxia);
worst post-baseline value flags in each direction.
"""
from __future__ import annotations

import pandas as pd

from adam import bds
from adam.metadata import DatasetSpec, load_spec

VS_REQUIRED = ("STUDYID", "USUBJID", "VSSEQ", "VSTESTCD", "VSTEST", "VSSTRESC", "VSSTRESN", "VSSTRESU", "VSDTC")
VS_OPTIONAL = {"VISIT": "", "VISITNUM": float("nan"), "VSTPT": "", "VSTPTNUM": float("nan")}


def build_advs(frames, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame | None:
    spec = spec or load_spec("ADVS", study.study.studyid)
    if not frames.has("VS"):
        return None
    advs = bds.findings_records(frames, adsl, "VS", VS_REQUIRED, VS_OPTIONAL)

    # baseline and change
    advs = bds.derive_var_ablfl(advs)
    post = bds.derive_var_postbl(advs)
    advs = bds.derive_vars_base(advs, {"BASE": "AVAL"})
    advs = bds.derive_var_chg(advs, post)
    advs = bds.derive_var_pchg(advs)

    # abnormality criteria as data, cited in vs_eg_abnormal.csv
    advs = bds.derive_vars_crit(advs, bds.abnormal_criteria("VS"), bds.max_crit("VS"))

    # treatment emergence and the worst post-baseline value in each direction
    advs = bds.derive_var_ontrtfl(advs, post)
    if "PRIMWFL" in spec.names:
        advs = bds.derive_var_window_flag(advs, "PRIMWFL", study.dlt.window_days)
    valued = (advs["ONTRTFL"] == "Y") & advs["AVAL"].notna()
    tie = [("ADTM", True), ("ADT", True), ("SRCSEQ", True)]
    advs = bds.derive_var_extreme_flag(advs, "WORSTLFL", valued, [("AVAL", True), *tie])
    advs = bds.derive_var_extreme_flag(advs, "WORSTHFL", valued, [("AVAL", False), *tie])

    advs = bds.derive_var_aseq(advs, ["PARAMCD", "ADT", "ADTM", "VISITNUM", "ATPTN", "SRCSEQ"])
    return advs[spec.names]
