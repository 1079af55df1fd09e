"""Dose-limiting toxicities: incidence by dose level with the 3+3 decisions and the MTD, the
DLT events, and where the investigator and the protocol rules disagree.

The 3+3 decisions and the MTD statement are adam.escalation's (the one implementation of the
rules of STUDIES.md 1); this module only lays them out and traces them to their subjects.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from adam.escalation import compute_escalation_summary, dlt_disagreements, mtd_level
from tlf import format as F
from tlf.analyses.base import (
    ALL,
    Result,
    TableLayout,
    count_subjects,
    denominators,
    in_level_order,
    records_of,
)
from tlf.analyses.listing import listing_result
from tlf.ard import finish_ard, finish_members
from tlf.context import TlfInputError
from tlf.stats import compute_clopper_pearson

METHOD = ("Exact (Clopper-Pearson) 95% confidence interval. 3+3 decisions and MTD from the "
          "escalation-cohort DLT-evaluable subjects (adam.escalation).")
ESC_METHOD = "3+3 RULES (ADAM.ESCALATION)"
ADSL_VARS = ["USUBJID", "COHORT", "TRT01A", "DLTEVLFL", "DLTFL", "SAFFL"]
ADAE_VARS = ["USUBJID", "AESEQ", "DLTWINFL", "DLTFL", "DLTINVFL", "DLTRULE"]


def dose_level_code(level: pd.Series | str):
    """'DL3 6x10^6 CAR+ cells/kg' -> 'DL3' (adam.escalation's key of a dose level)."""
    if isinstance(level, str):
        return level.split(" ", 1)[0]
    return level.astype(str).str.split(" ", n=1).str[0]


def by_dose_level(ctx, spec) -> Result:
    """DLT incidence per dose level (spec.by, the DLT-evaluable population) from ADAE DLTFL,
    n/N (%) with exact CI; then the escalation cohort's 3+3 counts and decision per level and
    the MTD statement. params: cohort_var / cohort (the 3+3 cohort, default COHORT ESCALATION)."""
    p = spec.params
    cohort_var, cohort = p.get("cohort_var", "COHORT"), p.get("cohort", "ESCALATION")
    if spec.by != "TRT01A":
        raise TlfInputError(f"output {spec.id}: DLT by dose level needs by: TRT01A",
                            hint="adam.escalation keys dose levels by the TRT01A code")
    adsl = ctx.dataset("ADSL", ADSL_VARS)
    adae = ctx.dataset("ADAE", ADAE_VARS)
    groups = ctx.groups(spec)
    n_ard, n_mem = denominators(groups, ctx.adsl, spec.id)
    dlt_recs = records_of(adae[adae["DLTFL"] == "Y"], "ADAE", seq="AESEQ").assign(PARAMCD="DLT")
    d_ard, d_mem = count_subjects(dlt_recs, groups, spec.id, ci=True)
    d_ard = with_zero_cells(d_ard, groups, spec.id, "DLT")

    table, statement = compute_escalation_summary(ctx.adsl, ctx.config)
    e_ard, e_mem = _escalation_ard(spec, groups, adsl, adae, table, statement, cohort_var, cohort)
    ard = pd.concat([n_ard, d_ard, e_ard], ignore_index=True)
    members = pd.concat([n_mem, d_mem, e_mem], ignore_index=True)
    return Result(ard, members, _layout(ard, groups, cohort), method=METHOD)


def _escalation_ard(spec, groups, adsl, adae, table: pd.DataFrame, statement: str,
                    cohort_var: str, cohort: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ARD rows (GRP2 = the cohort) for adam.escalation's table: evaluable n, DLT n, the
    decision (STATC, STATVAL NaN) per level, and the MTD statement (GRP1LVL ''), each with the
    escalation subjects (and their DLT records) behind it."""
    esc = adsl[(adsl[cohort_var] == cohort) & (adsl["DLTEVLFL"] == "Y")]
    esc = esc.assign(CODE=dose_level_code(esc["TRT01A"]))
    level_of = {dose_level_code(lv): lv for lv in groups.levels if lv != ALL}
    t = table.assign(GRP1LVL=table["DOSE LEVEL"].map(level_of).fillna(""))
    base = {"OUTID": spec.id, "POP": groups.pop, "GRP1": groups.var, "GRP2": cohort_var,
            "GRP2LVL": cohort}
    n_eval = t.assign(PARAMCD="ESCEVAL", STAT="n", STATVAL=t["DLT-EVALUABLE"].astype(float),
                      STATC=t["DLT-EVALUABLE"].astype(str))
    n_dlt = t.assign(PARAMCD="ESCDLT", STAT="n", STATVAL=t["WITH DLT"].astype(float),
                     STATC=t["WITH DLT"].astype(str))
    dec = t.assign(PARAMCD="ESCDEC", VARLVL=t["DECISION"].str.upper(), STAT="n",
                   STATVAL=np.nan, STATC=t["DECISION"], METHOD=ESC_METHOD)
    mtd = pd.DataFrame({"GRP1LVL": [""], "PARAMCD": ["MTD"], "VARLVL": [mtd_level(statement) or ""],
                        "STAT": ["n"], "STATVAL": [np.nan], "STATC": [statement],
                        "METHOD": [ESC_METHOD]})
    ard = finish_ard(pd.concat([n_eval, n_dlt, dec, mtd], ignore_index=True)[
        ["GRP1LVL", "PARAMCD", "VARLVL", "STAT", "STATVAL", "STATC", "METHOD"]].assign(**base))

    subj = esc.assign(GRP1LVL=esc["CODE"].map(level_of).fillna(""), DATASET="ADSL",
                      RECSEQ=np.nan)[["USUBJID", "GRP1LVL", "DATASET", "RECSEQ"]]
    dlt = adae[(adae["DLTFL"] == "Y") & adae["USUBJID"].isin(esc["USUBJID"])]
    dlt = records_of(dlt, "ADAE", seq="AESEQ").merge(subj[["USUBJID", "GRP1LVL"]], on="USUBJID")
    dec_mem = subj.merge(dec[["GRP1LVL", "VARLVL"]], on="GRP1LVL").assign(PARAMCD="ESCDEC")
    parts = [subj.assign(PARAMCD="ESCEVAL"),
             dlt[["USUBJID", "GRP1LVL", "DATASET", "RECSEQ"]].assign(PARAMCD="ESCDLT"),
             dec_mem, subj.assign(GRP1LVL="", PARAMCD="MTD", VARLVL=mtd_level(statement) or "")]
    members = finish_members(pd.concat(parts, ignore_index=True).assign(
        ROLE="num", GRP1=groups.var, GRP2=cohort_var, GRP2LVL=cohort))
    return ard, members


def _layout(ard: pd.DataFrame, groups, cohort: str) -> TableLayout:
    """One row per dose level (the classic 3+3 summary), then the MTD statement."""
    def stat(paramcd: str, stat: str, grp2: str = "") -> pd.Series:
        m = (ard["PARAMCD"] == paramcd) & (ard["STAT"] == stat) & (ard["GRP2"] == grp2)
        return ard.loc[m].drop_duplicates("GRP1LVL").set_index("GRP1LVL")["STATC"]

    N = ard[ard["STAT"] == "N"].set_index("GRP1LVL")["STATC"]
    n, pct = stat("DLT", "n"), stat("DLT", "pct")
    lcl, ucl = stat("DLT", "lcl"), stat("DLT", "ucl")
    grp2 = ard.loc[ard["PARAMCD"] == "ESCEVAL", "GRP2"]
    g2 = grp2.iloc[0] if len(grp2) else ""
    e_n, e_dlt, dec = stat("ESCEVAL", "n", g2), stat("ESCDLT", "n", g2), stat("ESCDEC", "n", g2)
    rows = []
    for lv in groups.levels:
        has = lv in n.index and n[lv] != "0"
        rows.append({
            "LEVEL": lv, "N": N.get(lv, "0"),
            "DLT": f"{n[lv]} ({pct[lv]})" if has else "0",
            "CI": f"({lcl[lv]}, {ucl[lv]})" if lv in lcl.index else "",
            "EN": e_n.get(lv, ""), "ED": e_dlt.get(lv, ""), "DEC": dec.get(lv, "")})
    mtd = ard.loc[ard["PARAMCD"] == "MTD", "STATC"]
    rows.append({"LEVEL": mtd.iloc[0] if len(mtd) else "", "N": "", "DLT": "", "CI": "",
                 "EN": "", "ED": "", "DEC": ""})
    body = pd.DataFrame(rows)
    headers = ["Dose level", "DLT-evaluable\\line N", "Subjects with DLT\\line n (%)",
               "95% CI (%)", f"{cohort.title()} cohort\\line evaluable n",
               f"{cohort.title()} cohort\\line with DLT n", "3+3 decision"]
    return TableLayout(body, headers, widths=[2.6, 1.1, 1.3, 1.3, 1.3, 1.3, 1.4])


def events(ctx, spec) -> Result:
    """DLT events by subject: the ADAE records the protocol rules call a DLT (DLTFL Y), with
    the rule(s) that fired (DLTRULE ids and their study.yaml texts). params: columns, sort,
    page_by as listing.records; DLTRULET is the rule text column."""
    adae = ctx.dataset("ADAE")
    missing = [v for v in ADAE_VARS if v not in adae]
    if missing:
        raise TlfInputError(f"output {spec.id}: ADAE has no {missing}",
                            hint="rebuild ADaM with the DLT derivation (adam/dlt.py)")
    recs = adae[adae["DLTFL"] == "Y"].copy()
    recs["DLTRULET"] = rule_texts(recs["DLTRULE"], ctx.config.dlt.rules)
    p = spec.params
    return listing_result(ctx, spec, recs, "ADAE", _listing_columns(spec), p.get("sort"),
                          p.get("page_by"))


def disagreements(ctx, spec) -> Result:
    """DLT-window AE records where the investigator's call (DLTINVFL) and the protocol rules
    (DLTFL) disagree: adam.escalation.dlt_disagreements, listed with the deciding rule.
    params: columns over its columns (USUBJID AESEQ AEDECOD GRADE SCALE RELATED START_DAY
    END_DAY INVESTIGATOR PROTOCOL_RULES DECIDED_BY) and ADSL variables; sort; page_by."""
    adae = ctx.dataset("ADAE")
    found = dlt_disagreements(adae, ctx.config)
    found.columns = [c.replace(" ", "_") for c in found.columns]
    p = spec.params
    return listing_result(ctx, spec, found, "ADAE", _listing_columns(spec), p.get("sort"),
                          p.get("page_by"))


def rule_texts(ids: pd.Series, rules) -> pd.Series:
    """'CRS-G4,NONHEM-G3-72H' -> 'CRS-G4: Grade 4 CRS (ASTCT); NONHEM-G3-72H: ...'."""
    text = {r.id: f"{r.id}: {r.text}" for r in rules}
    long = ids.fillna("").str.split(",").explode()
    long = long[long != ""]
    return long.map(text).fillna(long).groupby(level=0).agg("; ".join).reindex(
        ids.index, fill_value="")


def _listing_columns(spec) -> list[dict]:
    from tlf.analyses.listing import _columns
    return _columns(spec)


def with_zero_cells(ard: pd.DataFrame, groups, outid: str, paramcd: str) -> pd.DataFrame:
    """count_subjects gives no cell where no subject counted: add n = 0 with its exact CI
    (0 of N still has an upper bound worth printing: 1 - 0.025^(1/N))."""
    have = set(ard.loc[ard["PARAMCD"] == paramcd, "GRP1LVL"])
    empty = [lv for lv in groups.levels if lv not in have and groups.n[lv] > 0]
    if not empty:
        return ard
    N = np.array([groups.n[lv] for lv in empty], dtype=float)
    zero = np.zeros(len(empty))
    pct, lcl, ucl = compute_clopper_pearson(zero, N)
    base = {"OUTID": outid, "POP": groups.pop, "GRP1": groups.var, "GRP1LVL": empty,
            "PARAMCD": paramcd}
    ci = {"UNIT": "%", "METHOD": "CLOPPER-PEARSON 95% CI"}
    rows = [pd.DataFrame({**base, "STAT": "n", "STATVAL": zero, "STATC": F.fmt_int(zero)}),
            pd.DataFrame({**base, "STAT": "pct", "STATVAL": pct, "STATC": F.fmt(pct), "UNIT": "%"}),
            pd.DataFrame({**base, "STAT": "lcl", "STATVAL": lcl, "STATC": F.fmt(lcl), **ci}),
            pd.DataFrame({**base, "STAT": "ucl", "STATVAL": ucl, "STATC": F.fmt(ucl), **ci})]
    out = pd.concat([ard, finish_ard(pd.concat(rows, ignore_index=True))], ignore_index=True)
    return in_level_order(out, groups)
