"""ADSL: one record per subject in DM, read top to bottom like admiral's ad_adsl.R template.

Every variable comes from the dataset spec (`mappings/common/adam/adsl.yaml` + the study's):
its label, its place, and — for all but USUBJID — its derivation as a rule (`adam/rules.py`).
The builder only sets up what the rules read: DM as of the cut-off, the study configuration,
and the cut-off itself.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from adam.cutoff import CutoffView
from adam.metadata import DatasetSpec, load_spec
from adam.read import Sdtm
from adam.rules import apply_rules

DM_REQUIRED = ("STUDYID", "USUBJID", "SUBJID", "SITEID", "AGE", "AGEU", "SEX", "RACE", "ARMCD", "ARM",
               "ACTARMCD", "ACTARM")


def build_adsl(sdtm: Sdtm | CutoffView, study, cutoff: dt.date, spec: DatasetSpec | None = None
               ) -> pd.DataFrame:
    spec = spec or load_spec("ADSL", study.study.studyid)
    frames = sdtm if isinstance(sdtm, CutoffView) else CutoffView(sdtm, cutoff)
    dm = frames.get("DM", DM_REQUIRED)
    adsl = dm[["USUBJID"]].drop_duplicates().reset_index(drop=True)
    adsl = apply_rules(adsl, spec, frames, study)
    # variables that need other ADaM datasets (DLT flags from ADAE) are added by `finish_adsl`
    return adsl.sort_values("USUBJID", kind="stable").reset_index(drop=True)[
        [n for n in spec.names if n in adsl.columns]]


def finish_adsl(adsl: pd.DataFrame, built: dict[str, pd.DataFrame], study) -> pd.DataFrame:
    """ADSL variables derived from other ADaM datasets, once those are built: the subject-level
    DLT variables from ADAE (RS001: DLTFL, DLTINVFL, DLTEVLFL)."""
    if "DLTFL" in built.get("ADAE", pd.DataFrame()).columns:
        from adam.dlt import derive_vars_dlt_subject

        adsl = derive_vars_dlt_subject(adsl, built["ADAE"], study.dlt.window_days)
    return adsl
