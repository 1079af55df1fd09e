"""Laboratory abnormalities by CTCAE v5.0 grade (ADLB, graded from the numeric results):
subjects by worst post-baseline grade per parameter and direction, and the shift from the
baseline grade to the worst post-baseline grade.

A parameter is graded in each direction separately (ATOXGRLN with its term ATOXDSCL for low,
ATOXGRHN with ATOXDSCH for high): hemoglobin low is anemia, a different toxicity from a high
value, and ATOXGR keeps only one of the two per record. The "worst" grade of a subject is the
highest grade among the records the catalogue's `flag` selects (default ONTRTFL: post-baseline,
on treatment); the records that reach it are the cell's members.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tlf import format as F
from tlf.analyses.base import (
    Result,
    TableLayout,
    count_subjects,
    denominators,
    layout_rows,
    records_of,
)
from tlf.ard import finish_ard, finish_members

DIRECTIONS = {"L": ("ATOXDSCL", "ATOXGRLN", "BTOXGRLN"), "H": ("ATOXDSCH", "ATOXGRHN", "BTOXGRHN")}
ANY = "ANY WORST GRADE"
METHOD = "Subjects counted once per parameter and direction, at their worst post-baseline grade."


def worst_grades(ctx, spec) -> pd.DataFrame:
    """One row per graded ADLB record of the selected records, long over direction: USUBJID,
    ASEQ, PARAMCD, PARAM, PARAMN, DIR, TERM, GRADE, BGRADE, and WORST (the subject's highest
    GRADE in that parameter and direction) with ISWORST marking the records that reach it."""
    p = spec.params
    dataset = p.get("dataset", "ADLB")
    flag = p.get("flag", "ONTRTFL")
    cols = ["USUBJID", "ASEQ", "PARAMCD", "PARAM", "PARAMN", "AVAL", flag,
            *[v for d in DIRECTIONS.values() for v in d]]
    df = ctx.dataset(dataset, cols)
    df = df[(df[flag] == "Y") & df["AVAL"].notna()]
    parts = []
    for d, (term, grade, base) in DIRECTIONS.items():
        graded = df[df[term].fillna("") != ""]
        parts.append(pd.DataFrame({
            "USUBJID": graded["USUBJID"], "ASEQ": graded["ASEQ"], "PARAMCD": graded["PARAMCD"],
            "PARAM": graded["PARAM"], "PARAMN": graded["PARAMN"], "DIR": d,
            "TERM": graded[term], "GRADE": graded[grade], "BGRADE": graded[base]}))
    long = pd.concat(parts, ignore_index=True)
    long = long[long["GRADE"].notna()]
    long["WORST"] = long.groupby(["USUBJID", "PARAMCD", "DIR"])["GRADE"].transform("max")
    long["ISWORST"] = long["GRADE"] == long["WORST"]
    return records_of(long, dataset)


def _terms(long: pd.DataFrame) -> pd.DataFrame:
    """The graded parameter-directions in display order (PARAMN, low before high)."""
    t = long[["PARAMCD", "PARAM", "PARAMN", "DIR", "TERM"]].drop_duplicates(["PARAMCD", "DIR"])
    t = t.assign(DIRN=t["DIR"].map({"L": 0, "H": 1}))
    t = t.sort_values(["PARAMN", "PARAMCD", "DIRN"], kind="stable").reset_index(drop=True)
    t["PAGE"] = t["PARAM"] + ": " + t["TERM"]
    return t


def grade3(ctx, spec) -> Result:
    """Subjects with a post-baseline grade >= min_grade (default 3), and by worst grade, per
    parameter and direction and dose level; percentages of the population N.
    params: dataset (ADLB), flag (ONTRTFL), min_grade (3), max_grade (4), drop_empty (false:
    list every graded parameter; true: only those where a subject reached min_grade)."""
    p = spec.params
    lo, hi = int(p.get("min_grade", 3)), int(p.get("max_grade", 4))
    groups = ctx.groups(spec)
    long = worst_grades(ctx, spec)
    terms = _terms(long)
    high = long[long["WORST"] >= lo]
    anyg = high[high["GRADE"] >= lo].assign(VARLVL=f"GRADE >={lo}")
    worst = high[high["ISWORST"]]
    worst = worst.assign(VARLVL="WORST GRADE " + worst["WORST"].astype(int).astype(str))
    recs = pd.concat([anyg, worst], ignore_index=True)
    recs["PARAMCD"] = recs["PARAMCD"] + "-" + recs["DIR"]   # one cell per direction
    ard, members = count_subjects(recs, groups, spec.id)
    if p.get("drop_empty", False):
        terms = terms[(terms["PARAMCD"] + "-" + terms["DIR"]).isin(ard["PARAMCD"])]
    n_ard, n_mem = denominators(groups, ctx.adsl, spec.id)
    ard = pd.concat([n_ard, ard], ignore_index=True)
    members = pd.concat([n_mem, members], ignore_index=True)
    rows = []
    for t in terms.itertuples():
        key = {"PARAMCD": f"{t.PARAMCD}-{t.DIR}", "_page": t.PAGE}
        rows.append((f"Grade >= {lo}", {**key, "VARLVL": f"GRADE >={lo}"}, "{n} ({pct})"))
        for g in range(lo, hi + 1):
            rows.append((f"  Worst grade {g}", {**key, "VARLVL": f"WORST GRADE {g}"},
                         "{n} ({pct})"))
    table = layout_rows(ard, groups, rows, label_header="Worst post-baseline CTCAE grade",
                        page_by="PARAMETER")
    return Result(ard, members, table, method=METHOD + " Percentages are of the population N.")


def shift(ctx, spec) -> Result:
    """Baseline grade (BTOXGRxN) by worst post-baseline grade, per parameter and direction
    (page) and dose level (a heading row each): n (% of the level's subjects with a
    post-baseline graded value). params: dataset, flag, grades (0..4)."""
    p = spec.params
    grades = [int(g) for g in p.get("grades", [0, 1, 2, 3, 4])]
    groups = ctx.groups(spec)
    long = worst_grades(ctx, spec)
    terms = _terms(long)
    # the subject's baseline grade, on its first record at the worst grade: one record per
    # subject and parameter (a grade-0 parameter ties on every record; 10,000 subjects' labs
    # would otherwise make millions of members for one count)
    w = (long[long["ISWORST"]].sort_values(["USUBJID", "PARAMCD", "DIR", "RECSEQ"], kind="stable")
         .drop_duplicates(["USUBJID", "PARAMCD", "DIR"]).copy())
    w["GRP2"] = "BTOXGR"
    w["GRP2LVL"] = np.where(w["BGRADE"].notna(), "BASELINE GRADE " +
                            w["BGRADE"].fillna(0).astype(int).astype(str), "BASELINE MISSING")
    w["PARAMCD"] = w["PARAMCD"] + "-" + w["DIR"]
    w["VARLVL"] = "WORST GRADE " + w["WORST"].astype(int).astype(str)
    w = pd.concat([w, w.assign(VARLVL=ANY)], ignore_index=True)
    # denominator: subjects of the level with a graded post-baseline value in that parameter
    den = (w.merge(groups.frame, on="USUBJID").groupby(["GRP1LVL", "PARAMCD"])["USUBJID"]
           .nunique().reset_index(name="N"))
    den_cells = den.merge(pd.DataFrame({"GRP2LVL": w["GRP2LVL"].unique()}), how="cross")
    den_cells["GRP1"], den_cells["GRP2"] = groups.var, "BTOXGR"
    ard, members = count_subjects(w, groups, spec.id,
                                  denom=den_cells[["GRP1", "GRP1LVL", "GRP2", "GRP2LVL",
                                                   "PARAMCD", "N"]])
    n_ard, n_mem = _assessed_n(w, groups, spec.id)
    ard = pd.concat([n_ard, ard], ignore_index=True)
    members = pd.concat([n_mem, members], ignore_index=True)
    return Result(ard, members, _shift_layout(ard, groups, terms, grades),
                  method=METHOD + " Percentages are of the subjects of the dose level with a "
                                  "graded post-baseline value of the parameter.")


def _assessed_n(w: pd.DataFrame, groups, outid: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """N per level and parameter-direction (subjects with a graded post-baseline value)."""
    m = w.merge(groups.frame, on="USUBJID")
    cnt = m.groupby(["GRP1", "GRP1LVL", "PARAMCD"], sort=False)["USUBJID"].nunique()
    cnt = cnt.reset_index(name="STATVAL")
    ard = finish_ard(cnt.assign(OUTID=outid, POP=groups.pop, STAT="N",
                                STATC=F.fmt_int(cnt["STATVAL"]) if len(cnt) else []))
    # the N cell is the parameter's, not a baseline/worst-grade cell
    members = finish_members(m.assign(ROLE="den", GRP2="", GRP2LVL="", VARLVL=""))
    return ard, members


def _shift_layout(ard, groups, terms, grades) -> TableLayout:
    cells = ard[ard["STAT"].isin(["n", "pct"])].pivot_table(
        index=["GRP1LVL", "PARAMCD", "GRP2LVL", "VARLVL"], columns="STAT", values="STATC",
        aggfunc="first")
    N = ard[ard["STAT"] == "N"].set_index(["GRP1LVL", "PARAMCD"])["STATC"]
    base_levels = [f"BASELINE GRADE {g}" for g in grades] + ["BASELINE MISSING"]
    base_labels = [f"  Baseline grade {g}" for g in grades] + ["  Baseline missing"]
    rows = []
    for t in terms.itertuples():
        code = f"{t.PARAMCD}-{t.DIR}"
        for lv in groups.levels:
            rows.append({"PARAMETER": t.PAGE, "LABEL": f"{lv} (N={N.get((lv, code), '0')})",
                         **{f"G{g}": "" for g in grades}, "TOTAL": ""})
            for blv, blab in zip(base_levels, base_labels):
                row = {"PARAMETER": t.PAGE, "LABEL": blab}
                for g, var in [*((g, f"WORST GRADE {g}") for g in grades), ("TOTAL", ANY)]:
                    key = (lv, code, blv, var)
                    col = g if g == "TOTAL" else f"G{g}"
                    row[col] = (f"{cells.loc[key, 'n']} ({cells.loc[key, 'pct']})"
                                if key in cells.index else "0")
                if blv == "BASELINE MISSING" and row["TOTAL"] == "0":
                    continue          # a row of zeros for a baseline every subject has
                rows.append(row)
    body = pd.DataFrame(rows, columns=["PARAMETER", "LABEL", *[f"G{g}" for g in grades], "TOTAL"])
    headers = ["Dose level\\line Baseline CTCAE grade",
               *[f"Worst post-baseline\\line grade {g}" for g in grades], "Total"]
    return TableLayout(body, headers, page_by="PARAMETER",
                       widths=[2.6, *[1.0] * len(grades), 1.0])

