"""ADRS: per-visit overall response and the endpoint parameters of the study (BDS), read top to
bottom like admiralonco's ad_adrs.R template.

1. Overall response records: RS RSTESTCD OVRLRESP, one parameter per criterion named by RSCAT
   (the PARAMCD rule's `overall` map), AVALC the criterion's code, AVAL its rank.
2. The start of new anti-cancer therapy per subject (CM/PR records of the `new_therapy` rule).
3. The endpoint parameters in the order of the rule's `parameters`, each one record per subject
   of its population (an ADSL condition), decided by the response engine (adam/response.py).
The loop is over the dozen parameters, never over subjects or records.

Source variables: a record decided by one SDTM record carries its SRCDOM/SRCVAR/SRCSEQ (the
best response points to the RS record that gave it); a value no record decided (NE for no
eligible assessment, the consolidation decision from two sources) has none.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from adam import bds
from adam.dates import compute_dt
from adam.merged import RuleError, condition_mask
from adam.metadata import DatasetSpec, load_spec
from adam.read import SdtmInputError
from adam.response import (
    BestResponseRule,
    Criterion,
    compute_last_before,
    compute_lyric,
    compute_nearest,
    derive_best_response,
)

RS_REQUIRED = ("STUDYID", "USUBJID", "RSSEQ", "RSTESTCD", "RSCAT", "RSSTRESC", "RSDTC")
ADSL_VARS = {"SUBJID": "SUBJID", "SITEID": "SITEID", "TRTA": "TRT01A", "TRTAN": "TRT01AN", "SAFFL": "SAFFL",
             "EFFFL": "EFFFL", "DISEASCD": "DISEASCD", "CARTFL": "CARTFL", "CONSFL": "CONSFL"}
OUT = ["USUBJID", "PARAMCD", "PARAM", "PARCAT1", "AVALC", "AVAL", "ADT", "VISIT", "VISITNUM", "ANL01FL",
       "SRCDOM", "SRCVAR", "SRCSEQ"]


# --- inputs ------------------------------------------------------------------------------------

def overall_records(frames, adsl: pd.DataFrame, rule: dict, study) -> pd.DataFrame:
    """One record per OVRLRESP result of a criterion the study analyses, of a subject in ADSL:
    PARAMCD/PARAM/PARCAT1 from the criterion, CRIT its study.yaml code, AVALC the code (collected
    values mapped by the rule's `values`, else upper-cased), AVAL its rank. A code the criterion
    does not know is an error naming the record: a rank cannot be guessed."""
    rs = frames.get("RS", RS_REQUIRED)
    for var, default in (("VISIT", ""), ("VISITNUM", np.nan)):
        if var not in rs.columns:
            rs = rs.assign(**{var: default})
    rs = rs[(rs["RSTESTCD"] == "OVRLRESP") & rs["RSCAT"].isin(rule["overall"]) & rs["USUBJID"].isin(adsl["USUBJID"])]
    overall = pd.DataFrame.from_dict(rule["overall"], orient="index").rename_axis("RSCAT").reset_index()
    out = rs.merge(overall, on="RSCAT", how="inner")
    values = {str(k).upper(): v for k, v in (rule.get("values") or {}).items()}
    upper = out["RSSTRESC"].str.strip().str.upper()
    out["AVALC"] = upper.map(values).fillna(upper)
    ranks = pd.DataFrame([(c, code, float(rank)) for c in out["criterion"].unique()
                          for code, rank in Criterion.from_study(study, c).ranks.items()],
                         columns=["criterion", "AVALC", "AVAL"])
    out = out.merge(ranks, on=["criterion", "AVALC"], how="left")
    bad = out["AVAL"].isna() & (out["AVALC"] != "")
    if bad.any():
        first = out[bad].iloc[0]
        raise SdtmInputError(f"RS OVRLRESP {first['RSSTRESC']!r} ({first['RSCAT']}) is not a response of "
                             f"{first['criterion']} in study.yaml", record=f"{first['USUBJID']} RSSEQ "
                             f"{first['RSSEQ']:.0f}", field="RSSTRESC", file="RS",
                             hint="map it in the ADRS PARAMCD rule `values` or fix RS")
    out = out[out["AVALC"] != ""]
    return pd.DataFrame({
        "USUBJID": out["USUBJID"], "PARAMCD": out["paramcd"], "PARAM": out["param"], "PARCAT1": out["RSCAT"],
        "CRIT": out["criterion"], "AVALC": out["AVALC"], "AVAL": out["AVAL"].astype(float),
        "ADT": compute_dt(out["RSDTC"], "n")[0], "VISIT": out["VISIT"], "VISITNUM": out["VISITNUM"],
        "ANL01FL": "", "SRCDOM": "RS", "SRCVAR": "RSSTRESC", "SRCSEQ": out["RSSEQ"]}).reset_index(drop=True)


def compute_new_therapy_start(frames, where: dict[str, str]) -> pd.Series:
    """Per USUBJID the earliest start of new anti-cancer therapy ({domain: condition} on CM/PR;
    --STDTC imputed to the first of the month when partial, so a therapy of that month counts
    from its earliest possible day — the conservative side for response)."""
    starts = []
    for dom, cond in (where or {}).items():
        df = frames.get(dom)
        if df.empty or f"{dom}STDTC" not in df.columns:
            continue
        rows = df[condition_mask(df, cond, f"ADRS new_therapy {dom}")]
        starts.append(pd.DataFrame({"USUBJID": rows["USUBJID"], "D": compute_dt(rows[f"{dom}STDTC"], "M", "first")[0]}))
    if not starts:
        return pd.Series(dtype="datetime64[ns]")
    allst = pd.concat(starts).dropna(subset=["D"])
    return allst.groupby("USUBJID")["D"].min()


# --- parameters --------------------------------------------------------------------------------

def _population(adsl: pd.DataFrame, p: dict) -> pd.DataFrame:
    return adsl[condition_mask(adsl, p["population"], f"ADRS {p['paramcd']} population")]


def _blank(subjects: pd.Series, p: dict, crit_name: str) -> pd.DataFrame:
    """Records of subjects no assessment decided: empty date and source."""
    return pd.DataFrame({"USUBJID": subjects.to_numpy(), "PARAMCD": p["paramcd"], "PARAM": p["param"],
                         "PARCAT1": crit_name, "AVALC": "", "AVAL": np.nan, "ADT": pd.NaT, "VISIT": "",
                         "VISITNUM": np.nan, "ANL01FL": "", "SRCDOM": "", "SRCVAR": "", "SRCSEQ": np.nan})


def _from_source(pop: pd.Series, chosen: pd.DataFrame, p: dict, crit_name: str) -> pd.DataFrame:
    """One record per subject of `pop`: the chosen record's values and source where there is one."""
    base = _blank(pop, p, crit_name)
    if chosen.empty:
        return base
    ch = chosen.drop_duplicates("USUBJID").set_index("USUBJID")
    hit = base["USUBJID"].isin(ch.index)
    for var in ("AVALC", "AVAL", "ADT", "VISIT", "VISITNUM", "SRCDOM", "SRCVAR", "SRCSEQ"):
        if var in ch.columns:
            base.loc[hit, var] = base.loc[hit, "USUBJID"].map(ch[var]).to_numpy()
    return base


def _with_subject(ovr: pd.DataFrame, adsl: pd.DataFrame, newtx: pd.Series, anchor: str,
                  end_days: int | None) -> pd.DataFrame:
    a = ovr.merge(adsl[["USUBJID", anchor]].rename(columns={anchor: "ANCHOR"}), on="USUBJID", how="inner")
    a["ANCHOR"] = pd.to_datetime(a["ANCHOR"])
    a["WSTART"] = a["ANCHOR"]
    a["WEND"] = a["ANCHOR"] + pd.to_timedelta(end_days if end_days is not None else 100000, unit="D")
    a["NEWTXDT"] = a["USUBJID"].map(newtx).astype("datetime64[ns]")
    return a


def derive_param_best(ovr, adsl, newtx, p, crit: Criterion, crit_name: str):
    """Best response (kind best): the engine on the criterion's OVR records in the window from
    the anchor; LYRIC parameters first back-date confirmed IRs. Returns the records and the
    (USUBJID, SRCSEQ) of the OVR records that counted (ANL01FL)."""
    pop = _population(adsl, p)
    a = _with_subject(ovr[ovr["CRIT"] == crit.code], pop, newtx, p["anchor"], p.get("end_days"))
    resp_var = "AVALC"
    if p.get("lyric"):
        a = compute_lyric(a, crit)
        resp_var = "RESPC"
    rule = BestResponseRule(sd_min_days=p.get("sd_min_days"), confirm_days=p.get("confirm_days"),
                            stop_at_new_therapy=p.get("stop_at_new_therapy", True))
    best, scored = derive_best_response(a, crit, rule, resp_var)
    src = scored.set_index(["USUBJID", "SRCSEQ"])
    best = best.join(src[["VISIT", "VISITNUM"]], on=["USUBJID", "SRCSEQ"])
    best = best.assign(SRCDOM="RS", SRCVAR="RSSTRESC")
    out = _from_source(pop["USUBJID"], best, p, crit_name)
    none = out["AVALC"] == ""
    out.loc[none, "AVALC"] = crit.not_evaluable
    out.loc[none, "AVAL"] = float(crit.ranks[crit.not_evaluable])
    used = scored.loc[scored["ANL"], ["USUBJID", "SRCSEQ"]]
    return out, used, scored


def derive_param_rate(source: pd.DataFrame, p: dict) -> pd.DataFrame:
    """Y/N (AVAL 1/0) from the source parameter's response: Y when it is one of `responses`;
    same subjects, date and source record as the source parameter."""
    out = source.copy()
    yes = out["AVALC"].isin(p["responses"])
    out["PARAMCD"], out["PARAM"] = p["paramcd"], p["param"]
    out["AVALC"] = np.where(yes, "Y", "N")
    out["AVAL"] = yes.astype(float)
    return out


def derive_param_nearest(scored: pd.DataFrame, adsl, p, crit_name: str) -> pd.DataFrame:
    """Response at a visit window (kind nearest): the eligible assessment nearest Day `target`
    in Day `lo`..`hi` after the anchor is one of `responses` -> Y; none in the window -> N."""
    pop = _population(adsl, p)
    cand = scored[scored["USUBJID"].isin(pop["USUBJID"])]
    chosen = compute_nearest(cand, p["lo"], p["hi"], p["target"], eligible=cand["ANL"])
    chosen = chosen.assign(AVALC=chosen["AVALC"], SRCDOM="RS", SRCVAR="RSSTRESC")
    out = _from_source(pop["USUBJID"], chosen, p, crit_name)
    yes = out["AVALC"].isin(p["responses"])
    out["AVALC"] = np.where(yes, "Y", "N")
    out["AVAL"] = yes.astype(float)
    return out


def derive_param_mrd(frames, scored: pd.DataFrame, source: pd.DataFrame, p) -> pd.DataFrame:
    """MRD-negative CR/CRi (kind mrd): Y when an OVR record that counted for the source best
    response is one of `responses` and an RS MRD result on the same date is negative; the record
    points to that MRD result. NCCN reads MRD from the marrow assessment (RS MRDRESP, flow
    cytometry < 0.01%); LB MRD is the numeric level the interpretation comes from."""
    rs = frames.get("RS", RS_REQUIRED)
    mrd = rs[rs["RSTESTCD"] == p["mrd"]["RSTESTCD"]]
    mrd = pd.DataFrame({"USUBJID": mrd["USUBJID"], "ADT": compute_dt(mrd["RSDTC"], "n")[0],
                        "NEG": mrd["RSSTRESC"].str.upper() == p["mrd"]["negative"], "MRDSEQ": mrd["RSSEQ"],
                        "MVISIT": mrd.get("VISIT", ""), "MVISITNUM": mrd.get("VISITNUM", np.nan)})
    rem = scored[scored["ANL"] & scored["BESTC"].isin(p["responses"])]
    hit = rem.merge(mrd[mrd["NEG"]], on=["USUBJID", "ADT"], how="inner")
    hit = hit.sort_values(["USUBJID", "ADT", "MRDSEQ"]).drop_duplicates("USUBJID")
    chosen = pd.DataFrame({"USUBJID": hit["USUBJID"], "AVALC": "Y", "AVAL": 1.0, "ADT": hit["ADT"],
                           "VISIT": hit["MVISIT"], "VISITNUM": hit["MVISITNUM"], "SRCDOM": "RS",
                           "SRCVAR": "RSSTRESC", "SRCSEQ": hit["MRDSEQ"]})
    out = _from_source(source["USUBJID"], chosen, p, source["PARCAT1"].iloc[0] if len(source) else "")
    no = out["AVALC"] == ""
    out.loc[no, "AVALC"], out.loc[no, "AVAL"] = "N", 0.0
    return out


def derive_param_last_before(ovr, adsl, p, crit: Criterion, crit_name: str) -> pd.DataFrame:
    """Response on the last assessment from `start` to <= `max_gap_days` before `end` (kind
    last_before); without `end` (never started lymphodepletion/conditioning) the last one
    within `no_end_within_days` of `start`, if the parameter gives it; a subject with none is NE."""
    pop = _population(adsl, p)
    a = ovr[ovr["CRIT"] == crit.code].merge(pop[["USUBJID", p["start"], p["end"]]], on="USUBJID")
    a[p["start"]], a[p["end"]] = pd.to_datetime(a[p["start"]]), pd.to_datetime(a[p["end"]])
    chosen = compute_last_before(a, p["start"], p["end"], p["max_gap_days"])
    if p.get("no_end_within_days") is not None:
        # a subject who never started phase 2 (progression, toxicity): the response of phase 1
        # is the last assessment within `no_end_within_days` of the start
        rest = a[a[p["end"]].isna()].copy()
        rest["_END"] = rest[p["start"]] + pd.Timedelta(days=p["no_end_within_days"] + 1)
        late = compute_last_before(rest, p["start"], "_END", p["no_end_within_days"] + 1)
        chosen = pd.concat([chosen, late.drop(columns="_END")])
    out = _from_source(pop["USUBJID"], chosen, p, crit_name)
    none = out["AVALC"] == ""
    out.loc[none, "AVALC"], out.loc[none, "AVAL"] = crit.not_evaluable, float(crit.ranks[crit.not_evaluable])
    return out


def _day_window(df: pd.DataFrame, adsl: pd.DataFrame, p: dict) -> pd.DataFrame:
    df = df.merge(adsl[["USUBJID", p["anchor"]]].rename(columns={p["anchor"]: "ANCHOR"}), on="USUBJID")
    df["ANCHOR"] = pd.to_datetime(df["ANCHOR"])
    return compute_nearest(df, p["lo"], p["hi"], p["target"])


def derive_param_deauville(frames, adsl, p) -> pd.DataFrame:
    """Day-N Deauville score (kind deauville): per PET-CT scan the highest five-point-scale
    score of TR (the overall score is the highest lesion score; an overall record, if any, is
    one of them), the scan nearest Day `target` in the window after the anchor."""
    pop = _population(adsl, p)
    tr = frames.get("TR")
    if tr.empty:
        return _from_source(pop["USUBJID"], pd.DataFrame(), p, "TR")
    tr = tr[(tr["TRTESTCD"] == p["source"]["TRTESTCD"]) & tr["TRSTRESN"].notna() & tr["USUBJID"].isin(pop["USUBJID"])]
    tr = pd.DataFrame({"USUBJID": tr["USUBJID"], "ADT": compute_dt(tr["TRDTC"], "n")[0], "AVAL": tr["TRSTRESN"],
                       "SRCSEQ": tr["TRSEQ"], "VISIT": tr.get("VISIT", ""), "VISITNUM": tr.get("VISITNUM", np.nan)})
    scan = tr.sort_values(["USUBJID", "ADT", "AVAL", "SRCSEQ"], ascending=[True, True, False, True])
    scan = scan.drop_duplicates(["USUBJID", "ADT"])
    chosen = _day_window(scan, pop, p)
    chosen = chosen.assign(AVALC=chosen["AVAL"].map(lambda v: f"{v:g}"), SRCDOM="TR", SRCVAR="TRSTRESN")
    return _from_source(pop["USUBJID"], chosen, p, "TR")


def derive_param_ctdna(frames, adsl, p) -> pd.DataFrame:
    """Day-N ctDNA status (kind ctdna): LB result nearest Day `target` in the window; AVALC
    POSITIVE/NEGATIVE, AVAL 1/0."""
    pop = _population(adsl, p)
    lb = frames.get("LB")
    src = p["source"]
    if lb.empty:
        return _from_source(pop["USUBJID"], pd.DataFrame(), p, "LB")
    lb = lb[(lb["LBTESTCD"] == src["LBTESTCD"]) & lb["LBSTRESC"].isin([src["positive"], src["negative"]])
            & lb["USUBJID"].isin(pop["USUBJID"])]
    lb = pd.DataFrame({"USUBJID": lb["USUBJID"], "ADT": compute_dt(lb["LBDTC"], "n")[0], "AVALC": lb["LBSTRESC"],
                       "AVAL": (lb["LBSTRESC"] == src["positive"]).astype(float), "SRCSEQ": lb["LBSEQ"],
                       "VISIT": lb.get("VISIT", ""), "VISITNUM": lb.get("VISITNUM", np.nan),
                       "SRCDOM": "LB", "SRCVAR": "LBSTRESC"})
    chosen = _day_window(lb.sort_values(["USUBJID", "ADT", "SRCSEQ"]), pop, p)
    return _from_source(pop["USUBJID"], chosen, p, "LB")


def derive_param_consolidation(deauv: pd.DataFrame, ctdna: pd.DataFrame, p, cons) -> pd.DataFrame:
    """Consolidation indicated (kind consolidation; study.yaml consolidation): Y when the Day-28
    Deauville score >= deauville_min, or ctDNA is positive and ctdna_positive_triggers; N when
    both are known and neither triggers; empty when it cannot be decided (a missing result
    could be the trigger). Two sources decide it, so it has no SRC* (ADT: the later result)."""
    d = deauv.set_index("USUBJID")
    c = ctdna.set_index("USUBJID").reindex(d.index)
    score, status = d["AVAL"], c["AVALC"].fillna("")
    trig = (score >= cons.deauville_min).fillna(False)
    if cons.ctdna_positive_triggers:
        trig |= c["AVAL"].fillna(0) == 1
    known = score.notna() & ((status != "") | (not cons.ctdna_positive_triggers))
    out = _blank(pd.Series(d.index), p, "DERIVED")
    out["AVALC"] = np.select([trig.to_numpy(), known.to_numpy()], ["Y", "N"], "")
    out["AVAL"] = np.select([trig.to_numpy(), known.to_numpy()], [1.0, 0.0], np.nan)
    out["ADT"] = pd.concat([d["ADT"], c["ADT"]], axis=1).max(axis=1).to_numpy()
    return out


def derive_param_agreement(decision: pd.DataFrame, adsl: pd.DataFrame, p) -> pd.DataFrame:
    """Y when the derived decision equals the ADSL flag (consolidation indicated and given, or
    neither), N when not, empty when the decision could not be made."""
    given = decision["USUBJID"].map(adsl.set_index("USUBJID")[p["adsl"]]).fillna("")
    out = decision.copy()
    out["PARAMCD"], out["PARAM"] = p["paramcd"], p["param"]
    agree = out["AVALC"] == given
    decided = out["AVALC"] != ""
    out["AVALC"] = np.select([decided & agree, decided], ["Y", "N"], "")
    out["AVAL"] = np.select([decided & agree, decided], [1.0, 0.0], np.nan)
    return out


# --- the builder -------------------------------------------------------------------------------

def build_adrs(frames, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame | None:
    spec = spec or load_spec("ADRS", study.study.studyid)
    if not frames.has("RS"):
        return None
    rule = spec.var("PARAMCD").rule or {}
    if "overall" not in rule or "parameters" not in rule:
        raise RuleError("the ADRS PARAMCD rule needs `overall` and `parameters`", field="PARAMCD",
                        hint="see mappings/RS001/adam/adrs.yaml")
    ovr = overall_records(frames, adsl, rule, study)
    newtx = compute_new_therapy_start(frames, rule.get("new_therapy"))
    names = {c.code: c.name for c in study.response_criteria}
    crit_cat = {v["criterion"]: k for k, v in rule["overall"].items()}

    done: dict[str, pd.DataFrame] = {}
    scored_of: dict[str, pd.DataFrame] = {}
    used = []
    for p in rule["parameters"]:
        kind, code = p["kind"], p["paramcd"]
        crit = Criterion.from_study(study, p["criterion"]) if "criterion" in p else None
        cat = crit_cat.get(p.get("criterion"), names.get(p.get("criterion"), ""))
        if kind == "best":
            done[code], u, scored_of[code] = derive_param_best(ovr, adsl, newtx, p, crit, cat)
            used.append(u)
        elif kind == "rate":
            done[code] = derive_param_rate(done[p["of"]], p)
        elif kind == "nearest":
            # the nearest assessment must be one that counts (not after PD or new therapy)
            pop = _population(adsl, p)
            a = _with_subject(ovr[ovr["CRIT"] == crit.code], pop, newtx, p["anchor"], p["hi"])
            _, scored = derive_best_response(a, crit, BestResponseRule())
            done[code] = derive_param_nearest(scored.drop(columns="BESTC"), adsl, p, cat)
        elif kind == "mrd":
            done[code] = derive_param_mrd(frames, scored_of[p["of"]], done[p["of"]], p)
        elif kind == "last_before":
            done[code] = derive_param_last_before(ovr, adsl, p, crit, cat)
        elif kind == "deauville":
            done[code] = derive_param_deauville(frames, adsl, p)
        elif kind == "ctdna":
            done[code] = derive_param_ctdna(frames, adsl, p)
        elif kind == "consolidation":
            done[code] = derive_param_consolidation(done[p["deauville"]], done[p["ctdna"]], p, study.consolidation)
        elif kind == "agreement":
            done[code] = derive_param_agreement(done[p["of"]], adsl, p)
        else:
            raise RuleError(f"ADRS parameter {code}: unknown kind {kind!r}", field="PARAMCD",
                            hint="best, rate, nearest, mrd, last_before, deauville, ctdna, consolidation, agreement")

    # ANL01FL on the OVR records that counted for a best response of their criterion
    if used:
        u = pd.concat(used).drop_duplicates()
        counted = pd.MultiIndex.from_frame(ovr[["USUBJID", "SRCSEQ"]]).isin(pd.MultiIndex.from_frame(u))
        ovr.loc[counted, "ANL01FL"] = "Y"

    order = [*dict.fromkeys(v["paramcd"] for v in rule["overall"].values()), *done]
    adrs = pd.concat([ovr[OUT], *(d[OUT] for d in done.values())], ignore_index=True)
    adrs["PARAMN"] = adrs["PARAMCD"].map({c: float(i + 1) for i, c in enumerate(order)})
    adrs["STUDYID"] = study.study.studyid
    adrs = bds.derive_vars_adsl(adrs, adsl, {k: v for k, v in {**ADSL_VARS, "TRTSDT": "TRTSDT"}.items()
                                             if v in adsl.columns})
    adrs = bds.derive_var_ady(adrs, "TRTSDT")
    adrs = bds.derive_vars_avisit(adrs)
    adrs["ADT"] = pd.to_datetime(adrs["ADT"])
    adrs = bds.derive_var_aseq(adrs, ["PARAMN", "ADT", "SRCSEQ"])
    return adrs[spec.names]
