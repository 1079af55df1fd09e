"""GLOCART cell collection in phase 1: lymphocyte apheresis (for CAR-T manufacture) and
peripheral-blood stem-cell collection (for ASCT), yields against their targets.

No ADaM dataset carries the collections yet, so this reads SDTM PR with its SUPPPR yields
(`ctx.sdtm`). A subject's yield is the sum over the procedure's records (a stem-cell
collection runs over several apheresis days); one without the procedure, or without a
yield, has not met the target.
"""
from __future__ import annotations

import pandas as pd

from clinpipe.errors import ConfigError
from tlf import format as F
from tlf.analyses.base import Result, count_subjects, denominators, layout_rows, summarise
from tlf.ard import finish_members
from tlf.context import TlfInputError

SUCCESS = "COLLECT"         # PARAMCD of "every target met"
COLLECTED, MET = "COLLECTED", "TARGET MET"
METHOD = ("Yield per subject: sum over the procedure's collection days. Exact (Clopper-Pearson) "
          "95% CI. Percentages of the column N.")


def yields(ctx, spec) -> Result:
    """params: procedures: list of {prtrt, yield (SUPPPR QNAM), label, unit (as in the QLABEL,
    e.g. 10^8/kg), target (in that unit)}; success_label: the row of every target met."""
    procs = spec.params.get("procedures")
    if not procs:
        raise ConfigError(f"output {spec.id}: params need procedures", field="params",
                          hint="see tlf/analyses/collection.py yields")
    groups = ctx.groups(spec)
    pop = groups.frame[["USUBJID"]].drop_duplicates()
    pr, supp = _sdtm_pr(ctx, spec)

    records, summaries, met_sets, rows = [], [], [], []
    n_ard, n_members = denominators(groups, ctx.adsl, spec.id)
    for proc in procs:
        for key in ("prtrt", "yield", "label", "unit", "target"):
            if key not in proc:
                raise ConfigError(f"output {spec.id}: a procedure needs {key!r}", field="params",
                                  hint="see tlf/analyses/collection.py yields")
        code = proc["yield"]
        recs = pr.loc[(pr["PRTRT"] == proc["prtrt"]) & pr["USUBJID"].isin(pop["USUBJID"]),
                      ["USUBJID", "PRSEQ"]]
        vals = supp[supp["QNAM"] == code]
        if vals.empty:
            raise TlfInputError(f"SUPPPR has no QNAM {code}", file=ctx.sdtm_dir,
                                hint=f"output {spec.id}: fix params.procedures yield")
        qlabel = str(vals["QLABEL"].iloc[0])
        if str(proc["unit"]) not in qlabel:
            raise ConfigError(f"output {spec.id}: {code} is recorded as {qlabel!r}, not in "
                              f"{proc['unit']}", field="params",
                              hint="the target's unit must be the one the yield is recorded in")
        recs = recs.merge(vals[["USUBJID", "PRSEQ", "VALUE"]], on=["USUBJID", "PRSEQ"], how="left")
        recs = recs.assign(DATASET="PR", RECSEQ=recs["PRSEQ"].astype(float), PARAMCD=code)
        per_subj = recs.groupby("USUBJID", as_index=False).agg(
            VALUE=("VALUE", lambda v: v.sum(min_count=1)), RECSEQ=("RECSEQ", "min"))
        met = per_subj[per_subj["VALUE"] >= float(proc["target"])]["USUBJID"]
        met_sets.append(set(met))
        records += [recs.assign(VARLVL=COLLECTED),
                    recs[recs["USUBJID"].isin(met)].assign(VARLVL=MET)]
        # the summary reads one total per subject; its members are all the subject's records
        if per_subj["VALUE"].isna().all():
            summaries.append((n_ard.iloc[:0], n_members.iloc[:0]))   # nothing to summarise
        else:
            ard_s, _ = summarise(per_subj.assign(DATASET="PR", PARAMCD=code), "VALUE", groups,
                                 spec.id, unit=proc["unit"], digits=2)
            mem_s = recs[recs["USUBJID"].isin(per_subj.loc[per_subj["VALUE"].notna(), "USUBJID"])]
            mem_s = mem_s.merge(groups.frame, on="USUBJID").assign(VARLVL="", GRP2="", GRP2LVL="",
                                                                   ROLE="num")
            summaries.append((ard_s, finish_members(mem_s)))
        target = f">= {F.fmt(proc['target'], 1)[0]} x {proc['unit']}"
        k = {"PARAMCD": code}
        rows += [(proc["label"], {}, ""),
                 ("  Subjects with the procedure, n (%)", {**k, "VARLVL": COLLECTED}, "{n} ({pct})"),
                 (f"  Yield ({proc['unit']})", {}, ""),
                 ("    n", k, "{n}"),
                 ("    Mean (SD)", k, "{mean} ({sd})"),
                 ("    Median", k, "{median}"),
                 ("    Q1, Q3", k, "{q1}, {q3}"),
                 ("    Min, Max", k, "{min}, {max}"),
                 (f"  Target met ({target}), n (%)", {**k, "VARLVL": MET}, "{n} ({pct})")]
    all_met = set.intersection(*met_sets)
    success = pd.concat([r[r["VARLVL"] == MET] for r in records], ignore_index=True)
    success = success[success["USUBJID"].isin(all_met)].assign(PARAMCD=SUCCESS, VARLVL=MET)
    ard_c, mem_c = count_subjects(pd.concat(records, ignore_index=True), groups, spec.id)
    ard_b, mem_b = count_subjects(success, groups, spec.id, ci=True)
    ard = pd.concat([n_ard, ard_c, *[a for a, _ in summaries], ard_b], ignore_index=True)
    members = pd.concat([n_members, mem_c, *[m for _, m in summaries], mem_b], ignore_index=True)
    k = {"PARAMCD": SUCCESS, "VARLVL": MET}
    rows += [(spec.params.get("success_label", "All targets met"), {}, ""),
             ("  n (%)", k, "{n} ({pct})"), ("  95% CI", k, "({lcl}, {ucl})")]
    table = layout_rows(ard, groups, rows)
    table.widths = [3.2] + [1.0] * len(groups.levels)
    return Result(ard, members, table, method=METHOD)


def _sdtm_pr(ctx, spec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PR and its SUPPPR yields (numeric VALUE per USUBJID, PRSEQ): no ADaM dataset holds the
    cell collections, so they are read from the SDTM (members trace as DATASET PR)."""
    pr = ctx.sdtm("PR", ["USUBJID", "PRSEQ", "PRTRT"])
    supp = ctx.sdtm("SUPPPR", ["USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QVAL"])
    supp = supp[supp["IDVAR"] == "PRSEQ"]
    supp = supp.assign(PRSEQ=pd.to_numeric(supp["IDVARVAL"], errors="coerce"),
                       VALUE=pd.to_numeric(supp["QVAL"], errors="coerce"))
    pr = pr.assign(PRSEQ=pr["PRSEQ"].astype(float))
    return pr, supp

