"""The 3+3 dose-escalation summary: per dose level the DLT-evaluable n, the DLT n, the decision
the rules give, and the MTD statement — computed from ADSL (DLTEVLFL, DLTFL from ADAE) by the
rules of study.yaml (`escalation`: cohort size, the most per level), as STUDIES.md §1 states them:

- 0 of 3 with a DLT: escalate; 1 of 3: expand the level to 6; at most 1 of 6: tolerated;
- 2 or more (of 3 or of 6): the level exceeds the MTD, escalation stops;
- MTD = the highest level below the lowest exceeded level at which at most 1 of 6 evaluable
  subjects had a DLT (6 evaluable there); no exceeded level: MTD not reached, the highest level
  tested is reported.
Only escalation-cohort subjects count (expansion subjects are not part of the 3+3).
"""
from __future__ import annotations

import pandas as pd


def decide(n_eval: int, n_dlt: int, cohort_size: int, max_per_level: int) -> str:
    if n_dlt >= 2:
        return "exceeds MTD"
    if n_eval < cohort_size:
        return "incomplete"
    if n_eval < max_per_level:
        return "escalate" if n_dlt == 0 else f"expand to {max_per_level}"
    return "tolerated"


def compute_escalation_summary(adsl: pd.DataFrame, study) -> tuple[pd.DataFrame, str]:
    rules = study.escalation
    levels = [d.code for d in study.dose_levels]
    labels = {d.code: d.label for d in study.dose_levels}
    esc = adsl[(adsl.COHORT == "ESCALATION") & (adsl.DLTEVLFL == "Y")]
    code = esc.TRT01A.str.split(" ", n=1).str[0]
    rows = []
    for level in levels:
        at = esc[code == level]
        if at.empty and not (adsl.TRT01A.str.startswith(level + " ") & (adsl.COHORT == "ESCALATION")).any():
            continue
        n_eval, n_dlt = len(at), int((at.DLTFL == "Y").sum())
        rows.append({"DOSE LEVEL": level, "DOSE": labels[level], "TREATED": int(
            ((adsl.COHORT == "ESCALATION") & adsl.TRT01A.str.startswith(level + " ") & (adsl.SAFFL == "Y")).sum()),
            "DLT-EVALUABLE": n_eval, "WITH DLT": n_dlt,
            "DECISION": decide(n_eval, n_dlt, rules.cohort_size, rules.max_per_level)})
    table = pd.DataFrame(rows, columns=["DOSE LEVEL", "DOSE", "TREATED", "DLT-EVALUABLE", "WITH DLT", "DECISION"])
    exceeded = [r["DOSE LEVEL"] for r in rows if r["DECISION"] == "exceeds MTD"]
    if not rows:
        return table, "No escalation-cohort subject is DLT-evaluable yet."
    if not exceeded:
        highest = rows[-1]["DOSE LEVEL"]
        return table, f"MTD not reached; highest dose level tested {highest} ({labels[highest]})."
    first_bad = levels.index(exceeded[0])
    below = [r for r in rows if levels.index(r["DOSE LEVEL"]) < first_bad
             and r["DLT-EVALUABLE"] >= rules.max_per_level and r["WITH DLT"] <= 1]
    if not below:
        return table, (f"{exceeded[0]} exceeds the MTD; no lower level has {rules.max_per_level} evaluable "
                       "subjects with at most 1 DLT: MTD not determined.")
    mtd = below[-1]["DOSE LEVEL"]
    return table, f"MTD {mtd} ({labels[mtd]}): {exceeded[0]} exceeds the MTD."


def dlt_disagreements(adae: pd.DataFrame, study) -> pd.DataFrame:
    """Every DLT-window AE record where the investigator's DLT call (DLTINVFL) and the
    protocol rules (DLTFL) disagree, with the rule(s) that decided the derived call."""
    rules = {r.id: r.text for r in study.dlt.rules}
    w = adae[(adae.DLTWINFL == "Y") & (adae.DLTINVFL != "") & (adae.DLTINVFL != adae.DLTFL)]
    decided = w.DLTRULE.map(lambda ids: "; ".join(f"{i}: {rules[i]}" for i in ids.split(",")) if ids
                            else "no DLT rule met")
    return pd.DataFrame({
        "USUBJID": w.USUBJID, "AESEQ": w.AESEQ, "AEGRPID": w.AEGRPID, "AEDECOD": w.AEDECOD,
        "GRADE": w.ATOXGR, "SCALE": w.ATOXSCL, "RELATED": w.AEREL, "START DAY": w.ASTDY, "END DAY": w.AENDY,
        "INVESTIGATOR": w.DLTINVFL, "PROTOCOL RULES": w.DLTFL, "DECIDED BY": decided}).reset_index(drop=True)


def mtd_level(statement: str) -> str | None:
    """The MTD dose level code of a statement ('MTD DL3 (...)' -> 'DL3'), None otherwise."""
    return statement.split(" ")[1] if statement.startswith("MTD DL") else None
