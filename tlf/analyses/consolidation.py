"""GLOCART Day-28 assessment after CAR-T and the consolidation decision: the Deauville score
(grouped, e.g. 1-3 / 4-5) crossed with the ctDNA status, and within each combination the
subjects for whom consolidation was indicated and who received it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from clinpipe.errors import ConfigError
from tlf.analyses.base import Result, count_subjects, denominators, layout_rows
from tlf.context import TlfInputError

MISSING = "Missing"
CROSS = "D28CROSS"          # PARAMCD of the Deauville x ctDNA cells
METHOD = "Subject counts; percentages of the column N."


def day28(ctx, spec) -> Result:
    """params: deauville / ctdna: {paramcd, groups: {label: [AVALC, ...]}} (display order);
    indicated, agrees: ADRS Y/N parameters; received: the ADSL Y/N flag of consolidation given."""
    p = spec.params
    for key in ("deauville", "ctdna", "indicated", "agrees", "received"):
        if key not in p:
            raise ConfigError(f"output {spec.id}: params need {key!r}", field="params",
                              hint="see tlf/analyses/consolidation.py day28")
    groups = ctx.groups(spec)
    pop = groups.frame[["USUBJID"]].drop_duplicates()
    adrs = ctx.dataset("ADRS", ["USUBJID", "ASEQ", "PARAMCD", "PARAM", "AVALC"])
    received = p["received"]
    if received not in ctx.adsl:
        raise TlfInputError(f"ADSL has no variable {received}", file=ctx.adam_dir,
                            hint=f"output {spec.id}: fix params.received")
    labels = adrs.drop_duplicates("PARAMCD").set_index("PARAMCD")["PARAM"].to_dict()

    dv = _categorised(adrs, pop, p["deauville"], spec.id)
    ct = _categorised(adrs, pop, p["ctdna"], spec.id)
    ind = _one_per_subject(adrs, pop, p["indicated"], spec.id)
    agr = _one_per_subject(adrs, pop, p["agrees"], spec.id)
    adsl_rec = ctx.adsl.loc[ctx.adsl["USUBJID"].isin(pop["USUBJID"]), ["USUBJID", received]]
    adsl_rec = adsl_rec.assign(DATASET="ADSL", RECSEQ=np.nan)

    # both Day-28 records (or the ADSL record when one is missing) stand behind a cross cell
    cross = dv[["USUBJID", "VARLVL"]].merge(ct[["USUBJID", "VARLVL"]], on="USUBJID",
                                             suffixes=("_DV", "_CT"))
    cross["VARLVL"] = ("Deauville " + cross["VARLVL_DV"] + " / ctDNA " + cross["VARLVL_CT"])
    cross_rec = pd.concat([dv[["USUBJID", "DATASET", "RECSEQ"]].merge(cross[["USUBJID", "VARLVL"]]),
                           ct[["USUBJID", "DATASET", "RECSEQ"]].merge(cross[["USUBJID", "VARLVL"]])],
                          ignore_index=True).assign(PARAMCD=CROSS)
    ind_y = ind[ind["AVALC"] == "Y"]
    rec_y = adsl_rec[adsl_rec[received] == "Y"]
    cross_ind = pd.concat([cross_rec[cross_rec["USUBJID"].isin(ind_y["USUBJID"])],
                           cross_rec[["USUBJID", "VARLVL", "PARAMCD"]].drop_duplicates()
                           .merge(ind_y[["USUBJID", "DATASET", "RECSEQ"]])],
                          ignore_index=True).assign(GRP2=p["indicated"], GRP2LVL="Y")
    cross_recd = pd.concat([cross_rec[cross_rec["USUBJID"].isin(rec_y["USUBJID"])],
                            cross_rec[["USUBJID", "VARLVL", "PARAMCD"]].drop_duplicates()
                            .merge(rec_y[["USUBJID", "DATASET", "RECSEQ"]])],
                           ignore_index=True).assign(GRP2=received, GRP2LVL="Y")
    decision = pd.concat([
        ind_y.assign(PARAMCD=p["indicated"], VARLVL="Y"),
        rec_y.assign(PARAMCD=received, VARLVL="Y"),
        agr[agr["AVALC"] == "Y"].assign(PARAMCD=p["agrees"], VARLVL="Y")], ignore_index=True)
    records = pd.concat([dv.assign(PARAMCD=p["deauville"]["paramcd"]),
                         ct.assign(PARAMCD=p["ctdna"]["paramcd"]),
                         cross_rec, cross_ind, cross_recd, decision], ignore_index=True)
    records = records[["USUBJID", "DATASET", "RECSEQ", "PARAMCD", "VARLVL", "GRP2", "GRP2LVL"]]

    ard, members = count_subjects(records, groups, spec.id, method=METHOD)
    n_ard, n_members = denominators(groups, ctx.adsl, spec.id)
    ard = pd.concat([n_ard, ard], ignore_index=True)
    members = pd.concat([n_members, members], ignore_index=True)

    dv_code, ct_code = p["deauville"]["paramcd"], p["ctdna"]["paramcd"]
    dv_levels = _levels(p["deauville"], dv)
    ct_levels = _levels(p["ctdna"], ct)
    rows = [(labels.get(dv_code, dv_code), {}, "")]
    rows += [(f"  {lv}", {"PARAMCD": dv_code, "VARLVL": lv}, "{n} ({pct})") for lv in dv_levels]
    rows.append((labels.get(ct_code, ct_code), {}, ""))
    rows += [(f"  {lv}", {"PARAMCD": ct_code, "VARLVL": lv}, "{n} ({pct})") for lv in ct_levels]
    rows.append(("Deauville score x ctDNA", {}, ""))
    present = set(cross["VARLVL"])
    for d in dv_levels:
        for c in ct_levels:
            lv = f"Deauville {d} / ctDNA {c}"
            if MISSING in (d, c) and lv not in present:
                continue        # a missing-data line only when someone is in it
            k = {"PARAMCD": CROSS, "VARLVL": lv}
            rows += [(f"  {lv}", k, "{n} ({pct})"),
                     ("    Consolidation indicated", {**k, "GRP2": p["indicated"], "GRP2LVL": "Y"},
                      "{n}"),
                     ("    Consolidation received", {**k, "GRP2": received, "GRP2LVL": "Y"}, "{n}")]
    rows += [("Consolidation decision", {}, ""),
             ("  Consolidation indicated", {"PARAMCD": p["indicated"], "VARLVL": "Y"},
              "{n} ({pct})"),
             ("  Consolidation received", {"PARAMCD": received, "VARLVL": "Y"}, "{n} ({pct})"),
             ("  Received as indicated", {"PARAMCD": p["agrees"], "VARLVL": "Y"}, "{n} ({pct})")]
    table = layout_rows(ard, groups, rows)
    table.widths = [3.2] + [1.0] * len(groups.levels)
    return Result(ard, members, table, method=METHOD)


def _one_per_subject(adrs: pd.DataFrame, pop: pd.DataFrame, code: str, outid: str) -> pd.DataFrame:
    """The subject's one record of `code` (USUBJID, AVALC, DATASET, RECSEQ), population only."""
    df = adrs[(adrs["PARAMCD"] == code) & adrs["USUBJID"].isin(pop["USUBJID"])]
    if df.empty and not (adrs["PARAMCD"] == code).any():
        raise TlfInputError(f"ADRS has no parameter {code}", hint=f"output {outid}: fix params")
    twice = df["USUBJID"].duplicated()
    if twice.any():
        raise TlfInputError(f"ADRS {code}: more than one record for {df.loc[twice, 'USUBJID'].iloc[0]}",
                            hint=f"output {outid}: a Day-28 parameter is one record per subject")
    return pd.DataFrame({"USUBJID": df["USUBJID"].to_numpy(), "AVALC": df["AVALC"].to_numpy(),
                         "DATASET": "ADRS", "RECSEQ": df["ASEQ"].astype(float).to_numpy()})


def _categorised(adrs: pd.DataFrame, pop: pd.DataFrame, cfg: dict, outid: str) -> pd.DataFrame:
    """Every population subject with its category (VARLVL): the group its AVALC falls in, or
    Missing (no record, or a value in no group; the ADSL record then stands behind it)."""
    if "paramcd" not in cfg or "groups" not in cfg:
        raise ConfigError(f"output {outid}: deauville/ctdna params need paramcd and groups",
                          field="params", hint="e.g. {paramcd: D28DEAUV, groups: {1-3: [1, 2, 3]}}")
    rec = _one_per_subject(adrs, pop, cfg["paramcd"], outid)
    value_to_group = {str(v): label for label, values in cfg["groups"].items() for v in values}
    rec["VARLVL"] = rec["AVALC"].astype(str).map(value_to_group)
    rec = rec[rec["VARLVL"].notna()]
    absent = pop[~pop["USUBJID"].isin(rec["USUBJID"])]
    absent = absent.assign(AVALC="", DATASET="ADSL", RECSEQ=np.nan, VARLVL=MISSING)
    return pd.concat([rec, absent], ignore_index=True)


def _levels(cfg: dict, cat: pd.DataFrame) -> list[str]:
    levels = [str(k) for k in cfg["groups"]]
    return levels + [MISSING] if (cat["VARLVL"] == MISSING).any() else levels
