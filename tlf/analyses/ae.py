"""Treatment-emergent adverse events from ADAE (TRTEMFL = 'Y') in the output's population:
the overview, subjects by SOC/PT with their worst grade, CRS/ICANS by ASTCT grade with onset
and duration, and AESI by category.

Subjects are counted once per row (the usual incidence convention): a subject with several
events of a PT counts once for it, under the worst grade of those events. Percentages are
of N, the subjects of the column.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tlf.analyses.base import (
    ALL,
    Result,
    TableLayout,
    count_subjects,
    denominators,
    layout_rows,
    records_of,
    summarise,
)
from tlf.context import TlfInputError

# defaults when the catalogue does not say; a sponsor's SAP may differ, hence params
RELATED = ["RELATED", "PROBABLY RELATED", "POSSIBLY RELATED"]
SEVERE = 3
GRADES = ["1", "2", "3", "4", "5"]
BASE_COLS = ["USUBJID", "AESEQ", "TRTEMFL", "ASTDT", "TRTSDT"]
METHOD = ("Treatment-emergent AEs (ADAE TRTEMFL = Y); a subject is counted once per row, at the "
          "worst grade of the events in it; percentages of N.")


def day0_of(spec) -> str:
    """The ADSL date that is Day 0 for windows and onset (params.day0, or onset_from; default
    TRTSDT: RS001's infusion; e.g. CARTDT for GLOCART's CAR-T phase)."""
    return str(spec.params.get("day0", spec.params.get("onset_from", "TRTSDT")))


def teae(ctx, spec, columns: list[str]) -> pd.DataFrame:
    """TEAE records of ADAE (record identity AESEQ) with DAY (days from Day 0, see day0_of),
    restricted by params.filter ({var: value or values}), params.from_day0 (onset on or after
    Day 0 only) and params.window_days (onset at most that many days after Day 0). An unknown
    onset date is kept: it may lie in the window."""
    p = spec.params
    filt = p.get("filter", {}) or {}
    if not isinstance(filt, dict):
        raise TlfInputError(f"output {spec.id}: params.filter must be a mapping {{var: value}}",
                            field="params.filter", hint="e.g. {AESER: Y}")
    cols = list(dict.fromkeys([*BASE_COLS, *columns, *filt]))
    df = ctx.dataset("ADAE", cols)
    ref = day0_of(spec)
    adsl = ctx.dataset("ADSL", ["USUBJID", ref])
    df = df.drop(columns=[ref], errors="ignore").merge(adsl, on="USUBJID", how="left")
    days = (pd.to_datetime(df["ASTDT"]) - pd.to_datetime(df[ref])).dt.days.astype(float)
    df = df.assign(DAY=days)
    keep = df["TRTEMFL"] == "Y"
    for var, value in filt.items():
        keep &= df[var].astype(str).isin([str(v) for v in (value if isinstance(value, list)
                                                            else [value])])
    if p.get("from_day0"):
        keep &= days.isna() | (days >= 0)
    if p.get("window_days") is not None:
        keep &= days.isna() | (days <= int(p["window_days"]))
    return records_of(df[keep], "ADAE", seq="AESEQ")


def _with_n(ard_parts, member_parts, groups, ctx, spec):
    a, m = denominators(groups, ctx.adsl, spec.id)
    return (pd.concat([a, *ard_parts], ignore_index=True),
            pd.concat([m, *member_parts], ignore_index=True))


def overview(ctx, spec) -> Result:
    """Subjects with any TEAE, related (AEREL in params.related), grade >= params.severe_grade,
    serious, serious and related, fatal (AESDTH = Y or grade 5), AESI (AESIFL = Y)."""
    p = spec.params
    related = [str(v) for v in p.get("related", RELATED)]
    severe = int(p.get("severe_grade", SEVERE))
    rec = teae(ctx, spec, ["AEREL", "ATOXGRN", "AESER", "AESDTH", "AESIFL"])
    rel = rec["AEREL"].isin(related)
    rows_def = [("ANY", "Any TEAE", np.ones(len(rec), bool)),
                ("REL", "Treatment-related TEAE", rel),
                ("GE3", f"Grade >= {severe} TEAE", rec["ATOXGRN"] >= severe),
                ("GE3REL", f"Treatment-related grade >= {severe} TEAE",
                 rel & (rec["ATOXGRN"] >= severe)),
                ("SER", "Serious TEAE", rec["AESER"] == "Y"),
                ("SERREL", "Treatment-related serious TEAE", rel & (rec["AESER"] == "Y")),
                ("DTH", "TEAE leading to death", (rec["AESDTH"] == "Y") | (rec["ATOXGRN"] == 5)),
                ("AESI", "AE of special interest", rec["AESIFL"] == "Y")]
    slim = rec[["USUBJID", "DATASET", "RECSEQ"]]
    parts = [slim[np.asarray(mask, bool)].assign(PARAMCD=code) for code, _, mask in rows_def]
    groups = ctx.groups(spec)
    a, m = count_subjects(pd.concat(parts, ignore_index=True), groups, spec.id)
    ard, members = _with_n([a], [m], groups, ctx, spec)
    rows = [("Subjects with at least one:", {}, "")]
    rows += [(f"  {label}", {"PARAMCD": code}, "{n} ({pct})") for code, label, _ in rows_def]
    method = METHOD + f" Related: AEREL in {', '.join(related)}."
    if p.get("window_days") is not None:
        method += f" Onset Day 0 to Day {int(p['window_days'])} (Day 0 = {day0_of(spec)})."
    return Result(ard, members, layout_rows(ard, groups, rows), method=method)


def grade_bands(spec_value) -> list[tuple[str, list[int]]]:
    """params.grades: true (each grade 1-5) or labels like "1-2", "3", ">=3"."""
    labels = GRADES if spec_value is True else [str(v) for v in spec_value]
    bands = []
    for label in labels:
        if m := re.fullmatch(r"(\d)\s*-\s*(\d)", label):
            bands.append((label, list(range(int(m[1]), int(m[2]) + 1))))
        elif m := re.fullmatch(r">=\s*(\d)", label):
            bands.append((label, list(range(int(m[1]), 6))))
        elif re.fullmatch(r"\d", label):
            bands.append((label, [int(label)]))
        else:
            raise TlfInputError(f"grade band {label!r} is not like 3, 1-2 or >=3",
                                field="params.grades", hint='e.g. grades: ["1-2", "3", "4", "5"]')
    return bands


def _worst(rec: pd.DataFrame, bands) -> pd.DataFrame:
    """Per subject and cell, the records at the subject's worst grade, labelled by band
    (GRP2 = ATOXGR, GRP2LVL = band)."""
    g = rec["ATOXGRN"].fillna(-1)
    top = g.groupby([rec["USUBJID"], rec["PARAMCD"], rec["VARLVL"]]).transform("max")
    worst = rec[g == top]
    out = []
    for label, grades in bands:
        out.append(worst[worst["ATOXGRN"].isin(grades)].assign(GRP2="ATOXGR", GRP2LVL=label))
    return pd.concat(out, ignore_index=True)


def _sort_key(groups) -> str:
    return ALL if ALL in groups.levels else groups.levels[-1]


def hierarchy(ctx, spec, rec: pd.DataFrame, level1: str, level2: str, any_code: str,
              any_label: str, header: str, order1: list[str] | None = None) -> Result:
    """Subjects with an event: overall, per `level1` (PARAMCD) and per `level2` within it
    (VARLVL), sorted by descending count in the total column; with params.grades, columns by
    worst-grade band as well."""
    groups = ctx.groups(spec)
    rec = rec[rec["USUBJID"].isin(groups.frame["USUBJID"])]
    l1 = rec[level1].fillna("").astype(str).replace("", "Uncoded")
    l2 = rec[level2].fillna("").astype(str).replace("", "Uncoded")
    # only what the kernels need: three copies of every record is what costs at 10,000 subjects
    rec = rec[["USUBJID", "DATASET", "RECSEQ", "ATOXGRN"]]
    cells = pd.concat([rec.assign(PARAMCD=any_code, VARLVL=""),
                       rec.assign(PARAMCD=l1, VARLVL=""),
                       rec.assign(PARAMCD=l1, VARLVL=l2)], ignore_index=True)
    a, m = count_subjects(cells, groups, spec.id)
    ards, mems = [a], [m]
    bands = grade_bands(spec.params["grades"]) if spec.params.get("grades") else []
    if bands:
        a, m = count_subjects(_worst(cells, bands), groups, spec.id)
        ards.append(a), mems.append(m)
    ard, members = _with_n(ards, mems, groups, ctx, spec)

    # order by subjects in the total column, then alphabetically (stable across reruns)
    sort_lv = _sort_key(groups)
    n = cells[cells["USUBJID"].isin(groups.frame.loc[groups.frame["GRP1LVL"] == sort_lv,
                                                     "USUBJID"])]
    n = n.groupby(["PARAMCD", "VARLVL"])["USUBJID"].nunique()
    if n.empty:     # no event at all: the table still shows its first row, 0 everywhere
        n = pd.Series([0], index=pd.MultiIndex.from_tuples([(any_code, "")],
                                                           names=["PARAMCD", "VARLVL"]))
    socs = n.xs("", level="VARLVL").drop(any_code, errors="ignore")
    given = [s for s in order1 or [] if s in socs.index]
    soc_order = given + sorted((s for s in socs.index if s not in given),
                               key=lambda s: (-socs[s], s))
    rows = [(any_label, {"PARAMCD": any_code}, "{n} ({pct})")]
    pts = n.drop("", level="VARLVL")
    for soc in soc_order:
        rows.append((soc, {"PARAMCD": soc}, "{n} ({pct})"))
        within = pts.xs(soc, level="PARAMCD")
        for pt in sorted(within.index, key=lambda v: (-within[v], v)):
            rows.append((f"  {pt}", {"PARAMCD": soc, "VARLVL": pt}, "{n} ({pct})"))
    table = layout_rows(ard, groups, rows, label_header=header)
    if bands:
        table = _with_bands(ard, groups, rows, bands, table)
    return Result(ard, members, table, method=METHOD)


def _with_bands(ard, groups, rows, bands, plain: TableLayout) -> TableLayout:
    """Per column group: the any-grade column, then one per worst-grade band."""
    body = {"LABEL": plain.body["LABEL"]}
    headers = [plain.headers[0]]
    banded = {label: layout_rows(ard, groups, [(t, {**k, "GRP2": "ATOXGR", "GRP2LVL": label}, tpl)
                                               for t, k, tpl in rows]).body
              for label, _ in bands}
    for lv, head in zip(groups.levels, groups.headers()):
        body[f"{lv}|any"] = plain.body[lv]
        headers.append(f"{head}\\line Any grade")
        for label, _ in bands:
            body[f"{lv}|{label}"] = banded[label][lv]
            headers.append(f"{head}\\line Grade {label}")
    widths = [3.0] + [1.0] * (len(headers) - 1)
    return TableLayout(pd.DataFrame(body), headers, widths=widths)


def soc_pt(ctx, spec) -> Result:
    """params: grades (true or bands like ["1-2", "3", "4", "5"]), filter ({AESER: Y} for
    SAEs), window_days, label (first row)."""
    rec = teae(ctx, spec, ["AEBODSYS", "AEDECOD", "ATOXGRN"])
    label = spec.params.get("label", "Subjects with at least one TEAE")
    return hierarchy(ctx, spec, rec, "AEBODSYS", "AEDECOD", "TEAE", label,
                     "System organ class\\line   Preferred term")


def aesi(ctx, spec) -> Result:
    """AESI (AESIFL = Y) by category (AESICAT) and PT, worst grade as in soc_pt; params:
    categories (display order), grades, filter, window_days."""
    rec = teae(ctx, spec, ["AESIFL", "AESICAT", "AEDECOD", "ATOXGRN"])
    rec = rec[rec["AESIFL"] == "Y"]
    label = spec.params.get("label", "Subjects with at least one AESI")
    result = hierarchy(ctx, spec, rec, "AESICAT", "AEDECOD", "AESI", label,
                       "AESI category\\line   Preferred term",
                       order1=[str(c) for c in spec.params.get("categories", [])])
    result.method += " AESI categories from ADAE AESICAT."
    return result


def astct(ctx, spec) -> Result:
    """CRS and ICANS (params.categories, AESICAT values) graded on params.scale (ATOXSCL,
    default ASTCT 2019): subjects by worst grade, grade >= params.severe_grade, time to onset
    of the first event (days from Day 0, params.day0, an ADSL date, default TRTSDT) and
    duration of each event (ADURN, days; events without an end date are unresolved).
    params.day0 / from_day0 / window_days as in `teae` (GLOCART: day0 CARTDT, from_day0 true
    for the CAR-T phase; CRS under glofitamab starts before it)."""
    p = spec.params
    cats = [str(c) for c in p.get("categories", ["CRS", "ICANS"])]
    scale = str(p.get("scale", "ASTCT 2019"))
    severe = int(p.get("severe_grade", SEVERE))
    grades = [int(g) for g in p.get("grades", GRADES)]
    ref = day0_of(spec)
    rec = teae(ctx, spec, ["AESICAT", "ATOXSCL", "ATOXGRN", "ADURN"])
    rec = rec[rec["AESICAT"].isin(cats) & (rec["ATOXSCL"] == scale)]
    groups = ctx.groups(spec)
    rec = rec[rec["USUBJID"].isin(groups.frame["USUBJID"])]
    rec = rec.assign(PARAMCD=rec["AESICAT"], ONSET=rec["DAY"])

    counts = [rec.assign(VARLVL="ANY"), rec[rec["ATOXGRN"] >= severe].assign(VARLVL="SEVERE"),
              rec[rec["ADURN"].isna()].assign(VARLVL="UNRESOLVED")]
    g = rec["ATOXGRN"].fillna(-1)
    worst = rec[g == g.groupby([rec["USUBJID"], rec["PARAMCD"]]).transform("max")]
    counts.append(worst.assign(VARLVL="GRADE " + worst["ATOXGRN"].astype("Int64").astype(str)))
    a, m = count_subjects(pd.concat(counts, ignore_index=True), groups, spec.id)
    ards, mems = [a], [m]
    first = (rec[rec["ONSET"].notna()].sort_values(["USUBJID", "PARAMCD", "ONSET", "AESEQ"])
             .drop_duplicates(["USUBJID", "PARAMCD"]).assign(VARLVL="ONSET"))
    dur = rec[rec["ADURN"].notna()].assign(VARLVL="DURATION")
    for part, value in ((first, "ONSET"), (dur, "ADURN")):
        if len(part):
            a, m = summarise(part, value, groups, spec.id, digits=0, unit="DAYS")
            ards.append(a), mems.append(m)
    ard, members = _with_n(ards, mems, groups, ctx, spec)
    rows = []
    for c in cats:
        k = {"PARAMCD": c}
        rows += [(c, {}, ""), ("  Any grade", {**k, "VARLVL": "ANY"}, "{n} ({pct})")]
        rows += [(f"  Worst grade {gr}", {**k, "VARLVL": f"GRADE {gr}"}, "{n} ({pct})")
                 for gr in grades]
        rows += [(f"  Grade >= {severe}", {**k, "VARLVL": "SEVERE"}, "{n} ({pct})"),
                 ("  Time to onset of first event, days", {}, ""),
                 ("    n", {**k, "VARLVL": "ONSET"}, "{n}"),
                 ("    Median (min, max)", {**k, "VARLVL": "ONSET"}, "{median} ({min}, {max})"),
                 ("  Duration of events, days", {}, ""),
                 ("    Events with an end date", {**k, "VARLVL": "DURATION"}, "{n}"),
                 ("    Median (min, max)", {**k, "VARLVL": "DURATION"}, "{median} ({min}, {max})"),
                 ("  Subjects with an unresolved event", {**k, "VARLVL": "UNRESOLVED"},
                  "{n} ({pct})")]
    method = (f"Graded by {scale} (ADAE ATOXSCL); subjects by their worst grade. Onset: days "
              f"from {ref} (Day 0) to the first event's start; duration: end - start + 1 per "
              "event, events without an end date (unresolved at the cut-off) excluded.")
    return Result(ard, members, layout_rows(ard, groups, rows), method=method)
