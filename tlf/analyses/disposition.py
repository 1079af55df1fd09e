"""Subject disposition from ADSL: screened and screen failures (every ADSL subject), then,
within the output's population, the ADSL flags asked for (treated, ...), the status at the
end of study and the reasons for discontinuation, n (%) by column group."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tlf.analyses.base import (
    ALL,
    Result,
    count_subjects,
    denominators,
    layout_rows,
    records_of,
    subject_groups,
)
from tlf.analyses.demog import _need, categorical, level_order
from tlf.ard import finish_ard, finish_members
from tlf.context import TlfInputError

METHOD = ("Percentages of N, the subjects of the column in the population; screened and "
          "screen failures count every subject in ADSL (All subjects column only).")
SCREENED = "SCREENED"


def _screening(adsl: pd.DataFrame, spec, groups, enrolled: str):
    """Subjects screened and screen failures (not `enrolled`), over all ADSL subjects: they have
    no treatment group, so they are counted in the total column only."""
    everyone = subject_groups(adsl.assign(**{SCREENED: "Y"}), SCREENED, "", True, spec.where)
    rec = records_of(adsl.loc[adsl["USUBJID"].isin(everyone.frame["USUBJID"]),
                              ["USUBJID", enrolled]], "ADSL", seq=None)
    fail = rec[rec[enrolled].fillna("") != "Y"]
    parts = [rec.assign(PARAMCD=SCREENED), fail.assign(PARAMCD="SCRNFAIL")]
    ard, members = count_subjects(pd.concat(parts, ignore_index=True), everyone, spec.id)
    # the screening rows sit in the population table's total column
    ard = finish_ard(ard[ard["STAT"] == "n"].assign(GRP1=groups.var, GRP1LVL=ALL))
    members = finish_members(members.assign(GRP1=groups.var, GRP1LVL=ALL))
    return ard, members


def summary(ctx, spec) -> Result:
    """params: flags [{var, label}] (ADSL Y/N flags as rows), status (default EOSSTT) with
    status_levels (display order), reason (default DCSREAS), enrolled (the flag whose 'N' is a
    screen failure, default ENRLFL; `screening: false` leaves those rows out)."""
    p = spec.params
    flags = p.get("flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, dict) and "var" in f for f in flags):
        raise TlfInputError(f"output {spec.id}: params.flags must be a list of {{var, label}}",
                            field="params.flags", hint="e.g. [{var: SAFFL, label: Treated}]")
    status, reason = p.get("status", "EOSSTT"), p.get("reason", "DCSREAS")
    enrolled = p.get("enrolled", "ENRLFL")
    screening = bool(p.get("screening", True))
    adsl = _need(ctx, spec, ["USUBJID", status, reason, *(f["var"] for f in flags),
                             *([enrolled] if screening else [])])
    groups = ctx.groups(spec)
    pop = adsl[adsl["USUBJID"].isin(groups.frame["USUBJID"])]
    ards, members = [], []
    a, m = denominators(groups, adsl, spec.id)
    ards.append(a), members.append(m)
    rows: list[tuple[str, dict, str]] = []
    if screening:
        a, m = _screening(adsl, spec, groups, enrolled)
        ards.append(a), members.append(m)
        rows += [("Subjects screened", {"PARAMCD": SCREENED}, "{n}"),
                 ("Screen failures", {"PARAMCD": "SCRNFAIL"}, "{n}")]
    if flags:
        rec = records_of(pop[["USUBJID", *(f["var"] for f in flags)]], "ADSL", seq=None)
        parts = [rec[rec[f["var"]] == "Y"].assign(PARAMCD=f["var"], VARLVL="Y") for f in flags]
        a, m = count_subjects(pd.concat(parts, ignore_index=True), groups, spec.id)
        ards.append(a), members.append(m)
        rows += [(f.get("label", f["var"]), {"PARAMCD": f["var"], "VARLVL": "Y"}, "{n} ({pct})")
                 for f in flags]
    a, m = categorical(pop, status, groups, spec.id)
    ards.append(a), members.append(m)
    rows.append((p.get("status_label", "Status at end of study"), {}, ""))
    rows += [(f"  {lv}", {"PARAMCD": status, "VARLVL": lv}, "{n} ({pct})")
             for lv in level_order(pop, status, p.get("status_levels"))]
    # subjects still on study or completed have no reason: a blank reason is not "missing"
    given = pop[pop[reason].fillna("").astype(str) != ""]
    rows.append((p.get("reason_label", "Reason for discontinuation"), {}, ""))
    if len(given):
        a, m = categorical(given, reason, groups, spec.id)
        ards.append(a), members.append(m)
        counts = given[reason].astype(str).value_counts()
        order = sorted(counts.index, key=lambda v: (-counts[v], v))
        rows += [(f"  {lv}", {"PARAMCD": reason, "VARLVL": lv}, "{n} ({pct})") for lv in order]
    ard = pd.concat(ards, ignore_index=True)
    ard["METHOD"] = np.where(ard["PARAMCD"].isin([SCREENED, "SCRNFAIL"]),
                             "ALL ADSL SUBJECTS", ard["METHOD"])
    table = layout_rows(ard, groups, rows, label_header="")
    if screening:   # screen failures have no group: a 0 under a dose level would mislead
        others = [lv for lv in groups.levels if lv != ALL]
        table.body.loc[:1, others] = ""
    return Result(ard, pd.concat(members, ignore_index=True), table, method=METHOD)
