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


def build_advs(frames, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame | None:
    spec = spec or load_spec("ADVS", study.study.studyid)
    return bds.build_measurements(frames, study, adsl, spec, "VS", {"BASE": "AVAL"})
