"""ADEX: exposure, one record per administration plus per-subject summary parameters (BDS; the
shape of admiral's ad_adex.R: PARCAT1 INDIVIDUAL for administrations, OVERALL for summaries).

Both are data of the study's ADEX spec (`mappings/<STUDY>/adam/adex.yaml`, PARAMCD rule):
- `administrations`: EXTRT -> PARAMCD and label (PARAM = label + unit, AVAL = EX.EXDOSE). A
  treatment the table does not name (GLOCART's agent X is the investigator's choice) gets a
  code from its name (first 4 letters + DOSE) rather than stopping the build;
- `summaries`: per subject, over the EX records meeting a condition — count (records),
  count_days (distinct administration days: GemOx is two EX records on one day), sum
  (cumulative dose, times a unit factor), exists (Y/N), planned_dose (the dose level of the
  planned arm in study.yaml), ratio (percent of one summary over another), within (Y when
  |received/planned - 1| <= tolerance) and range (Y when low <= value <= high).
Summary records come from many EX records, so they carry no SRCDOM/SRCSEQ.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from adam.cutoff import CutoffView
from adam.dates import compute_dt, compute_dtm
from adam.merged import RuleError, condition_mask
from adam.metadata import DatasetSpec, load_spec

EX_REQUIRED = ("STUDYID", "USUBJID", "EXSEQ", "EXTRT", "EXDOSE", "EXDOSU", "EXSTDTC")
EX_OPTIONAL_CHAR = ("EXCAT", "EXSCAT", "EXADJ", "EXENDTC", "VISIT")
ADSL_VARS = ("SUBJID", "SITEID", "ARMCD", "TRT01P", "TRT01PN", "TRT01A", "TRT01AN", "TRTSDT")
STATS = ("count", "count_days", "sum", "exists", "planned_dose", "ratio", "within", "range")


def _ex(frames) -> pd.DataFrame:
    ex = frames.get("EX", EX_REQUIRED).copy()
    for v in EX_OPTIONAL_CHAR:
        if v not in ex.columns:
            ex[v] = ""
    if "VISITNUM" not in ex.columns:
        ex["VISITNUM"] = np.nan
    return ex


def _fallback_code(extrt: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", extrt.upper())[:4] + "DOSE"


def derive_vars_admin_params(ex: pd.DataFrame, rule: dict, where: str) -> pd.DataFrame:
    """PARAMCD/PARAM/AVALU of each administration from the rule's `administrations` table."""
    table = rule.get("administrations", {}) or {}
    known, label, unit = ({t: v.get(k, "") for t, v in table.items()} for k in ("code", "label", "unit"))
    known, label, unit = (ex.EXTRT.map(m).fillna("") for m in (known, label, unit))
    fallback = {t: _fallback_code(t) for t in ex.EXTRT.unique()}   # per treatment, not per record
    out = ex.assign(PARAMCD=known.where(known != "", ex.EXTRT.map(fallback)),
                    _LABEL=label.where(label != "", ex.EXTRT.str.title() + " Dose"),
                    AVALU=unit.where(unit != "", ex.EXDOSU))
    # one code, one unit: the same treatment in two units would need two parameters
    units = out.groupby("PARAMCD").EXDOSU.nunique()
    if (units > 1).any():
        code = units[units > 1].index[0]
        found = sorted(out.loc[out.PARAMCD == code, "EXDOSU"].unique())
        raise RuleError(f"EX doses of {code} are in more than one unit ({', '.join(found)})", file="EX",
                        field="EXDOSU", hint=f"standardise EXDOSU or give each unit its own code in {where}")
    out["PARAM"] = out._LABEL + " (" + out.AVALU + ")"
    return out.drop(columns="_LABEL")


def _subject_stat(ex: pd.DataFrame, subjects: pd.Index, s: dict, where: str) -> pd.Series:
    rows = ex[condition_mask(ex, s["where"], f"{where}: {s['code']}")] if s.get("where") else ex
    g = rows.groupby("USUBJID")
    if s["stat"] == "count":
        return g.size().reindex(subjects, fill_value=0).astype(float)
    if s["stat"] == "count_days":
        days = rows.assign(_DAY=rows.EXSTDTC.str[:10]).drop_duplicates(["USUBJID", "_DAY"])
        return days.groupby("USUBJID").size().reindex(subjects, fill_value=0).astype(float)
    if s["stat"] == "sum":
        return (g.EXDOSE.sum(min_count=1) * float(s.get("factor", 1.0))).reindex(subjects).fillna(0.0)
    if s["stat"] == "exists":
        return pd.Series(subjects.isin(rows.USUBJID).astype(float), index=subjects)
    raise AssertionError(s["stat"])


def derive_param_summaries(ex: pd.DataFrame, adsl: pd.DataFrame, study, rule: dict, where: str) -> pd.DataFrame:
    """One record per treated subject (any EX record) and summary parameter."""
    subjects = pd.Index(sorted(ex.USUBJID.unique()), name="USUBJID")
    values: dict[str, pd.Series] = {}
    rows = []
    planned = {a.armcd: a.dose_level for a in study.arms}
    doses = {d.code: d.dose for d in getattr(study, "dose_levels", [])}
    armcd = adsl.set_index("USUBJID").ARMCD.reindex(subjects)
    for n, s in enumerate(rule.get("summaries", []) or [], start=1):
        stat = s.get("stat")
        if stat not in STATS or "code" not in s or "label" not in s:
            raise RuleError(f"summary {s!r} needs code, label and a stat of {', '.join(STATS)}", file=where,
                            field="PARAMCD", hint="fix the summaries: list")
        flag = stat in ("exists", "within", "range")
        if stat == "planned_dose":
            v = armcd.map(planned).map(doses).astype(float)
        elif stat in ("ratio", "within"):
            a, b = (values[c] for c in s["of"])
            r = a / b.where(b > 0)
            v = 100.0 * r if stat == "ratio" else ((r - 1).abs() <= float(s["tolerance"]) + 1e-12).astype(float).where(r.notna())
        elif stat == "range":
            a = values[s["of"]]
            v = ((a >= float(s["low"])) & (a <= float(s["high"]))).astype(float).where(a.notna())
        else:
            v = _subject_stat(ex, subjects, s, where)
        values[s["code"]] = v
        unit = s.get("unit", "")
        rows.append(pd.DataFrame({
            "USUBJID": subjects, "PARAMCD": s["code"], "AVAL": v.to_numpy(),
            "AVALC": np.where(v.isna(), "", np.where(v == 1, "Y", "N")) if flag else "",
            "PARAM": s["label"] + (f" ({unit})" if unit else ""), "AVALU": unit, "_ORDER": 1000 + n}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["USUBJID", "PARAMCD"])


def build_adex(frames: CutoffView, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame:
    spec = spec or load_spec("ADEX", study.study.studyid)
    where = spec.sources[-1]
    rule = spec.var("PARAMCD").rule or {}
    ex = _ex(frames)
    unknown = sorted(set(ex.USUBJID) - set(adsl.USUBJID))
    if unknown:
        raise RuleError(f"EX has {len(unknown)} subject(s) not in DM/ADSL, e.g. {unknown[0]}", file="EX",
                        field="USUBJID", hint="fix USUBJID in EX or deliver the subject's DM record")

    # administrations, in time order
    adm = derive_vars_admin_params(ex, rule, where)
    adm["ASTDTM"] = compute_dtm(adm.EXSTDTC, "s")[0]    # only where the time was collected
    adm["ASTDT"] = compute_dt(adm.EXSTDTC)[0]
    adm["AENDT"] = compute_dt(adm.EXENDTC)[0]
    adm = adm.assign(PARCAT1="INDIVIDUAL", AVAL=adm.EXDOSE, AVALC="", AVISIT=adm.VISIT, AVISITN=adm.VISITNUM,
                     SRCDOM="EX", SRCVAR="EXDOSE", SRCSEQ=adm.EXSEQ)
    order = list(dict.fromkeys([v["code"] for v in (rule.get("administrations") or {}).values()]))
    adm["_ORDER"] = adm.PARAMCD.map({c: i for i, c in enumerate(order, start=1)}).fillna(500.0)

    summ = derive_param_summaries(ex, adsl, study, rule, where).assign(PARCAT1="OVERALL")
    adex = pd.concat([adm, summ], ignore_index=True)
    for v in ("EXTRT", "EXCAT", "EXSCAT", "EXADJ", "AVISIT", "SRCDOM", "SRCVAR", "AVALC"):
        adex[v] = adex[v].fillna("")
    codes = adex.drop_duplicates(["PARAMCD", "PARAM"])
    if codes.PARAMCD.duplicated().any():
        code = codes.PARAMCD[codes.PARAMCD.duplicated()].iloc[0]
        raise RuleError(f"ADEX parameter code {code} stands for more than one PARAM "
                        f"({'; '.join(codes.loc[codes.PARAMCD == code, 'PARAM'])})", file=where, field="PARAMCD",
                        hint="give each treatment/summary its own code in the PARAMCD rule")
    adex["PARAMN"] = adex._ORDER.rank(method="dense")
    adex = adex.merge(adsl[["USUBJID", "STUDYID", *ADSL_VARS]].rename(columns={"STUDYID": "_SID"}),
                      on="USUBJID", how="left")
    adex["STUDYID"] = adex._SID
    days = (adex.ASTDT - adex.TRTSDT).dt.days
    adex["ASTDY"] = np.where(days >= 0, days + 1, days)     # study day of the administration: no day 0
    adex = adex.sort_values(["USUBJID", "PARCAT1", "ASTDT", "ASTDTM", "SRCSEQ", "PARAMN"], kind="stable",
                            na_position="last", key=lambda c: c.map({"INDIVIDUAL": 0, "OVERALL": 1}) if c.name == "PARCAT1" else c)
    adex["ASEQ"] = adex.groupby("USUBJID").cumcount() + 1.0
    return adex.reset_index(drop=True)[spec.names]
