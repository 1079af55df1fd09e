"""Dose-limiting toxicities re-derived from the protocol's rules (study.yaml `dlt`), beside the
investigator's call, and the subject-level DLT evaluation of a 3+3 design.

Conventions (written down once, shared with the generator's truth, `simulate.common.dlt_rules_met`):
- a record is in the window when it starts on Day 0 .. Day `window_days` after the anchor
  (the infusion; ADaM ASTDY 1 .. window_days + 1);
- its duration is AENDT - ASTDT in whole days x 24 h; an ongoing record lasts until the
  subject's last date (death, end of study or cut-off, whichever is first);
- a rule's duration is met when the duration is at least `min_duration_hours`;
- related = AEREL among the related values of ae_categories.yaml; hematologic = the
  category's condition there; a rule with `grade_scale: ASTCT` applies to ASTCT-graded records.
Everything is vectorised over records; the loop is over the rules.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from adam.merged import condition_mask


def compute_dlt_rules(adae: pd.DataFrame, dlt, categories: dict, last_date: pd.Series) -> pd.Series:
    """Per record, the ids of the DLT rules it meets, comma-separated ('' for none)."""
    day = (adae.ASTDT - adae.TRTSDT).dt.days
    in_window = (day >= 0) & (day <= dlt.window_days) & adae.ASTDT.notna()
    end = adae.AENDT.fillna(last_date)
    end = end.where(end <= last_date, last_date)
    hours = ((end - adae.ASTDT).dt.days.clip(lower=0) * 24).fillna(0)
    grade = pd.to_numeric(adae.ATOXGRN, errors="coerce").fillna(0)
    related = adae.AEREL.isin(categories.get("related", []))
    hematologic = pd.Series(condition_mask(adae, categories["hematologic"], "hematologic"), index=adae.index)
    astct = adae.ATOXSCL.str.startswith("ASTCT")
    hits = pd.Series("", index=adae.index, dtype=object)
    for rule in dlt.rules:
        met = in_window & grade.between(rule.min_grade, rule.max_grade) & (hours >= rule.min_duration_hours)
        if rule.terms:
            met &= adae.AEDECOD.isin(rule.terms)
        if rule.exclude_terms:
            met &= ~adae.AEDECOD.isin(rule.exclude_terms)
        if rule.category == "hematologic":
            met &= hematologic
        elif rule.category == "non-hematologic":
            met &= ~hematologic
        if rule.grade_scale == "ASTCT":
            met &= astct
        if rule.related_required:
            met &= related
        hits = hits.where(~met, np.where(hits == "", rule.id, hits + "," + rule.id))
    return hits


def derive_vars_dlt(adae: pd.DataFrame, dlt, categories: dict, last_date: pd.Series,
                    investigator: pd.Series) -> pd.DataFrame:
    """Add DLTWINFL, DLTINVFL, DLTFL, DLTRULE (window records: Y/N; others: null)."""
    out = adae.copy()
    day = (out.ASTDT - out.TRTSDT).dt.days
    window = (day >= 0) & (day <= dlt.window_days)
    out["DLTWINFL"] = np.where(window, "Y", "")
    out["DLTRULE"] = compute_dlt_rules(out, dlt, categories, last_date)
    out["DLTFL"] = np.where(out.DLTRULE != "", "Y", np.where(window, "N", ""))
    out["DLTINVFL"] = investigator.where(investigator.isin(["Y", "N"]), "").to_numpy()
    return out


def derive_vars_dlt_subject(adsl: pd.DataFrame, adae: pd.DataFrame, window_days: int,
                            assigned_dose: pd.Series | None = None) -> pd.DataFrame:
    """ADSL's DLT variables: DLTFL (any record with DLTFL = Y), DLTINVFL (any investigator Y),
    DLTEVLFL: received the product at the assigned dose (`assigned_dose` Y/N per USUBJID; when
    None, infusion is taken as received as assigned) and either completed the window — followed
    to Day `window_days` (last known alive or cut-off on or after it, not dead before it) — or had
    a DLT in it."""
    out = adsl.copy()
    subj_dlt = adae.loc[adae.DLTFL == "Y", "USUBJID"].unique()
    subj_inv = adae.loc[adae.DLTINVFL == "Y", "USUBJID"].unique()
    treated = out.TRTSDT.notna()
    out["DLTFL"] = np.where(treated, np.where(out.USUBJID.isin(subj_dlt), "Y", "N"), "")
    out["DLTINVFL"] = np.where(treated, np.where(out.USUBJID.isin(subj_inv), "Y", "N"), "")
    window_end = out.TRTSDT + pd.to_timedelta(window_days, unit="D")
    followed = (out.LSTALVDT >= window_end) | ((out.DCUTDT >= window_end) & out.DTHDT.isna())
    died_early = out.DTHDT.notna() & (out.DTHDT < window_end)
    completed = followed & ~died_early
    as_assigned = (out.USUBJID.map(assigned_dose).fillna("N") == "Y") if assigned_dose is not None else treated
    evaluable = treated & as_assigned & (completed | (out.DLTFL == "Y"))
    out["DLTEVLFL"] = np.where(evaluable, "Y", "N")
    return out
