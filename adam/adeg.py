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


def build_adeg(frames, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame | None:
    spec = spec or load_spec("ADEG", study.study.studyid)
    return bds.build_measurements(frames, study, adsl, spec, "EG", {"BASE": "AVAL", "BASEC": "AVALC"})
