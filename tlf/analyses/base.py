"""The kernels every output is built from: subject counts, summary statistics, Kaplan-Meier.

Each kernel takes *records* (one row per ADaM record that may count: USUBJID, DATASET, RECSEQ,
the cell keys PARAMCD / VARLVL and the value columns it needs) and *groups* (USUBJID ->
GRP1LVL, from `subject_groups`), and returns ARD rows plus the members behind each cell (see
`tlf.ard`). They are vectorised (groupby), so a 10,000-subject study costs what its records
cost, not one Python step per subject.

An analysis function (`tlf/analyses/<module>.py`, named in the catalogue) has the signature
``fn(ctx: TlfContext, spec: OutputSpec) -> Result`` and usually reads its records, calls one
or more kernels, and lays the ARD out as a table with `layout_rows`.
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tlf import format as F
from tlf.ard import CELL_KEYS, finish_ard, finish_members
from tlf.stats import compute_clopper_pearson, compute_km

ALL = "All subjects"
LANDMARK_MONTHS = (6, 12, 24)


@dataclass
class TableLayout:
    """What the RTF shows: `body` text columns, left to right; `headers` one per column
    (group columns carry "(N=..)"); `page_by`: a body column whose values start new blocks
    (shown as a spanning row, not a column); `widths`: relative column widths; `align`: per
    column 'l', 'c' or 'r' (default: the first left, the others centred, as for counts)."""
    body: pd.DataFrame
    headers: list[str]
    page_by: str | None = None
    widths: list[float] | None = None
    align: list[str] | None = None


@dataclass
class Result:
    ard: pd.DataFrame
    members: pd.DataFrame
    table: TableLayout | None = None
    figures: list = field(default_factory=list)       # matplotlib Figures, in order
    method: str = ""                                   # footnote: how the numbers were made


@dataclass(frozen=True)
class Groups:
    """Subjects of the population by column group; `levels` in display order with their N."""
    var: str
    frame: pd.DataFrame            # USUBJID, GRP1, GRP1LVL (a subject twice with a total)
    levels: list[str]
    n: dict[str, int]
    pop: str

    def header(self, level: str) -> str:
        return f"{level}\\line (N={self.n[level]})"

    def headers(self) -> list[str]:
        return [self.header(lv) for lv in self.levels]


def subject_groups(adsl: pd.DataFrame, pop_flag: str, by: str = "", total: bool = False,
                   where: dict | None = None) -> Groups:
    """The population (ADSL `pop_flag` == 'Y', restricted by `where`: variable -> value or
    values) split by ADSL variable `by` (ordered by its numeric twin `<by>N` when there is
    one, e.g. TRT01A by TRT01AN), plus "All subjects"."""
    keep = adsl[pop_flag] == "Y"
    for var, value in (where or {}).items():
        keep &= adsl[var].astype(str).isin([value] if isinstance(value, str) else list(value))
    pop = adsl.loc[keep]
    parts = []
    levels: list[str] = []
    if by:
        order_var = f"{by}N" if f"{by}N" in pop else by
        cols = list(dict.fromkeys([order_var, by]))   # no twin: sort by the text itself
        lv = pop[cols].drop_duplicates().sort_values(cols, kind="stable")
        levels = [v for v in lv[by].astype(str) if v != ""]
        parts.append(pd.DataFrame({"USUBJID": pop["USUBJID"].to_numpy(), "GRP1": by,
                                   "GRP1LVL": pop[by].astype(str).to_numpy()}))
    if total or not by:
        levels.append(ALL)
        parts.append(pd.DataFrame({"USUBJID": pop["USUBJID"].to_numpy(), "GRP1": by,
                                   "GRP1LVL": ALL}))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["GRP1LVL"] != ""].reset_index(drop=True)
    n = frame.groupby("GRP1LVL")["USUBJID"].nunique().reindex(levels, fill_value=0)
    return Groups(by, frame, levels, {k: int(v) for k, v in n.items()}, pop_flag)


def in_level_order(ard: pd.DataFrame, groups: Groups) -> pd.DataFrame:
    """ARD rows ordered by column group as displayed (stable within a group)."""
    rank = {lv: i for i, lv in enumerate(groups.levels)}
    key = ard["GRP1LVL"].map(rank).fillna(len(rank))
    return ard.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def records_of(df: pd.DataFrame, dataset: str, seq: str | None = "ASEQ") -> pd.DataFrame:
    """An ADaM frame with the record identity every kernel carries (DATASET, RECSEQ)."""
    out = df.copy()
    out["DATASET"] = dataset
    out["RECSEQ"] = df[seq].astype(float) if seq else np.nan
    return out


_IDENTITY = ("USUBJID", "DATASET", "RECSEQ", "GRP2", "GRP2LVL", "PARAMCD", "VARLVL")


def _grouped(records: pd.DataFrame, groups: Groups, values: tuple[str, ...] = ()) -> pd.DataFrame:
    """The records (only their identity and the `values` a kernel reads: a wide ADLB frame
    copied through the merge would cost more than the counting) in their column groups."""
    keep = [c for c in dict.fromkeys((*_IDENTITY, *values)) if c in records.columns]
    merged = records[keep].merge(groups.frame, on="USUBJID", how="inner")
    for key in ("GRP2", "GRP2LVL", "PARAMCD", "VARLVL"):
        if key not in merged:
            merged[key] = ""
        merged[key] = merged[key].fillna("").astype(str)
    return merged


def denominators(groups: Groups, adsl: pd.DataFrame, outid: str, by2: pd.DataFrame | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """N per column group (and per GRP2 level when `by2` maps USUBJID -> GRP2, GRP2LVL), with
    the ADSL records as members (ROLE den)."""
    base = groups.frame
    if by2 is not None:
        base = base.merge(by2, on="USUBJID")
    else:
        base = base.assign(GRP2="", GRP2LVL="")
    base = base.assign(PARAMCD="", VARLVL="")
    cnt = base.groupby(["GRP1", "GRP1LVL", "GRP2", "GRP2LVL"], sort=False)["USUBJID"].nunique()
    cnt = cnt.reset_index(name="STATVAL")
    ard = finish_ard(cnt.assign(OUTID=outid, POP=groups.pop, STAT="N",
                                STATC=F.fmt_int(cnt["STATVAL"]) if len(cnt) else []))
    ard = in_level_order(ard, groups)
    members = finish_members(base.assign(ROLE="den", DATASET="ADSL", RECSEQ=np.nan))
    return ard, members


def count_subjects(records: pd.DataFrame, groups: Groups, outid: str, *,
                   denom: pd.DataFrame | None = None, ci: bool = False,
                   method: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subjects with at least one record per cell (GRP1LVL x GRP2LVL x PARAMCD x VARLVL):
    n, pct of the group's N (or of `denom`: a frame of cell keys without VARLVL -> N) and,
    with `ci`, the exact Clopper-Pearson 95% CI."""
    rec = _grouped(records, groups)
    keys = CELL_KEYS
    n = rec.groupby(keys, sort=False)["USUBJID"].nunique().reset_index(name="n")
    if denom is None:
        N = pd.Series(groups.n, name="N").rename_axis("GRP1LVL").reset_index()
        n = n.merge(N, on="GRP1LVL", how="left")
    else:
        n = n.merge(denom, on=[k for k in denom.columns if k != "N"], how="left")
    pct, lcl, ucl = compute_clopper_pearson(n["n"].to_numpy(), n["N"].to_numpy())
    parts = [n.assign(STAT="n", STATVAL=n["n"], STATC=F.fmt_int(n["n"]) if len(n) else []),
             n.assign(STAT="pct", STATVAL=pct, STATC=F.fmt(pct) if len(n) else [], UNIT="%")]
    if ci:
        parts += [n.assign(STAT="lcl", STATVAL=lcl, STATC=F.fmt(lcl) if len(n) else [], UNIT="%",
                           METHOD="CLOPPER-PEARSON 95% CI"),
                  n.assign(STAT="ucl", STATVAL=ucl, STATC=F.fmt(ucl) if len(n) else [], UNIT="%",
                           METHOD="CLOPPER-PEARSON 95% CI")]
    ard = pd.concat(parts, ignore_index=True).assign(OUTID=outid, POP=groups.pop)
    if "METHOD" not in ard:
        ard["METHOD"] = ""
    ard["METHOD"] = ard["METHOD"].fillna("").where(ard["METHOD"].fillna("") != "", method)
    members = finish_members(rec.assign(ROLE="num"))
    return in_level_order(finish_ard(ard), groups), members


SUMMARY_STATS = ("n", "mean", "sd", "median", "q1", "q3", "min", "max")
GEO_STATS = ("n", "mean", "sd", "cv", "geomean", "geocv", "median", "min", "max")


def summarise(records: pd.DataFrame, value: str, groups: Groups, outid: str, *,
              stats=SUMMARY_STATS, unit: str | pd.Series = "", digits: int = 1
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Descriptive statistics of `value` per cell. SD with n-1; quartiles by SAS's default
    definition (QNTLDEF=5, the empirical distribution with averaging), CV% = 100 SD/mean,
    geometric mean exp(mean log x) and geometric CV% = 100 sqrt(exp(s^2) - 1), s the SD of
    log x (positive values only; otherwise NE)."""
    rec = _grouped(records, groups, (value,))
    rec = rec[rec[value].notna()]
    g = rec.groupby(CELL_KEYS, sort=False)[value]
    x = rec[value].astype(float)
    logx = np.log(x.where(x > 0))
    out = pd.DataFrame({
        "n": g.count(), "mean": g.mean(), "sd": g.std(ddof=1),
        "median": g.median(), "min": g.min(), "max": g.max(),
        "q1": g.apply(lambda v: _sas_quantile(v.to_numpy(), 0.25)),
        "q3": g.apply(lambda v: _sas_quantile(v.to_numpy(), 0.75)),
    })
    lg = logx.groupby([rec[k] for k in CELL_KEYS], sort=False)
    all_pos = (x > 0).groupby([rec[k] for k in CELL_KEYS], sort=False).all()
    out["geomean"] = np.exp(lg.mean()).where(all_pos)
    out["geocv"] = (100 * np.sqrt(np.exp(lg.std(ddof=1) ** 2) - 1)).where(all_pos)
    out["cv"] = 100 * out["sd"] / out["mean"]
    long = out[list(stats)].reset_index().melt(id_vars=CELL_KEYS, var_name="STAT",
                                               value_name="STATVAL")
    decimals = long["STAT"].map({"n": 0, "min": digits, "max": digits, "cv": 1, "geocv": 1}
                                ).fillna(digits + 1).astype(int)
    statc = np.empty(len(long), dtype=object)
    for d in decimals.unique():
        m = (decimals == d).to_numpy()
        statc[m] = F.fmt_int(long.loc[m, "STATVAL"]) if d == 0 else F.fmt(long.loc[m, "STATVAL"], d)
    long["STATC"] = statc
    long["UNIT"] = np.where(long["STAT"].isin(["cv", "geocv"]), "%",
                            np.where(long["STAT"] == "n", "", unit if isinstance(unit, str) else ""))
    ard = in_level_order(finish_ard(long.assign(OUTID=outid, POP=groups.pop)), groups)
    members = finish_members(rec.assign(ROLE="num"))
    return ard, members


def _sas_quantile(v: np.ndarray, p: float) -> float:
    """SAS PCTLDEF=5 (PROC UNIVARIATE / MEANS default): with np = j + g, the (j+1)-th order
    statistic if g > 0, else the mean of the j-th and (j+1)-th."""
    v = np.sort(v[~np.isnan(v)])
    n = len(v)
    if n == 0:
        return np.nan
    j, g = divmod(n * p, 1)
    j = int(j)
    if g > 1e-12:
        return float(v[j])
    return float((v[j - 1] + v[j]) / 2) if j > 0 else float(v[0])


def km_table(records: pd.DataFrame, groups: Groups, outid: str, *,
             landmarks=LANDMARK_MONTHS) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per cell: events, censored, KM median with 95% CI (Brookmeyer-Crowley, log-log) and
    landmark rates at `landmarks` months (log-log 95% CI). `records` carry AVAL (days) and
    CNSR. Returns the ARD, the members and the fitted KMResult per cell key."""
    rec = _grouped(records, groups, ("AVAL", "CNSR"))
    rows, fits = [], {}
    lm_days = [m * F.DAYS_PER_MONTH for m in landmarks]
    method_med = "KM; MEDIAN 95% CI BROOKMEYER-CROWLEY, LOG-LOG"
    method_rate = "KM; 95% CI LOG-LOG (GREENWOOD)"
    for key, cell in rec.groupby(CELL_KEYS, sort=False):
        fit = compute_km(cell["AVAL"].to_numpy(float), (cell["CNSR"] == 0).to_numpy(int), lm_days)
        fits[key] = fit
        base = dict(zip(CELL_KEYS, key))
        n_cell = fit.n
        rows += [{**base, "STAT": "n", "STATVAL": n_cell},
                 {**base, "STAT": "events", "STATVAL": fit.events},
                 {**base, "STAT": "censored", "STATVAL": fit.censored}]
        for stat, val in (("km_median", fit.median), ("km_median_lcl", fit.median_lcl),
                          ("km_median_ucl", fit.median_ucl)):
            rows.append({**base, "STAT": stat, "STATVAL": val, "UNIT": "DAYS", "METHOD": method_med})
        for m, (_, lm) in zip(landmarks, fit.landmarks.iterrows()):
            for stat, val in (("km_rate", lm["surv"]), ("km_rate_lcl", lm["lcl"]),
                              ("km_rate_ucl", lm["ucl"])):
                rows.append({**base, "STAT": stat, "STATVAL": 100 * val, "UNIT": "%",
                             "TIMEPT": str(m), "METHOD": method_rate})
    ard = pd.DataFrame(rows, columns=[*CELL_KEYS, "STAT", "STATVAL", "UNIT", "TIMEPT", "METHOD"])
    ard["UNIT"] = ard["UNIT"].fillna("")
    counts = ard["STAT"].isin(["n", "events", "censored"])
    med = ard["STAT"].str.startswith("km_median")
    statc = np.empty(len(ard), dtype=object)
    statc[counts.to_numpy()] = F.fmt_int(ard.loc[counts, "STATVAL"])
    statc[med.to_numpy()] = F.fmt(F.months(ard.loc[med, "STATVAL"]), 1)  # printed in months
    rate = ~(counts | med)
    statc[rate.to_numpy()] = F.fmt(ard.loc[rate, "STATVAL"], 1)
    ard["STATC"] = statc
    ard = in_level_order(finish_ard(ard.assign(OUTID=outid, POP=groups.pop)), groups)
    members = finish_members(rec.assign(ROLE=np.where(rec["CNSR"] == 0, "num", "cens")))
    return ard, members, fits


def layout_rows(ard: pd.DataFrame, groups: Groups, rows: list[tuple[str, dict, str]],
                label_header: str = "", page_by: str | None = None) -> TableLayout:
    """A table from the ARD: each row is (label, cell keys, template) where the template names
    statistics in braces, e.g. "{n} ({pct})" or "{km_median} ({km_median_lcl}, {km_median_ucl})".
    A row with template '' is a heading line. Keys may include TIMEPT; missing cells print ''."""
    idx_cols = [*CELL_KEYS, "TIMEPT", "STAT"]
    lookup = ard.set_index(idx_cols)["STATC"]
    lookup = lookup[~lookup.index.duplicated()]
    body = {"LABEL": [], **{lv: [] for lv in groups.levels}}
    pages = []
    for label, keys, template in rows:
        body["LABEL"].append(label)
        pages.append(keys.get("_page", ""))
        for lv in groups.levels:
            body[lv].append(_fill(template, lookup, {**keys, "GRP1LVL": lv, "GRP1": groups.var})
                            if template else "")
    frame = pd.DataFrame(body)
    headers = [label_header, *groups.headers()]
    if page_by:
        frame.insert(0, page_by, pages)
    return TableLayout(frame, headers, page_by=page_by)


def _fill(template: str, lookup: pd.Series, keys: dict) -> str:
    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        value = lookup.get(tuple(keys.get(k, "") for k in [*CELL_KEYS, "TIMEPT"]) + (name,))
        if value is None:   # no record in the cell: a count is 0, anything else is blank
            return "0" if name in ("n", "events") else ""
        if name in ("n", "events") and value == "0" and template.startswith("{" + name + "}"):
            return "0"      # "0 (0.0)" is clutter in a submission table
        out.append(value)
    return "".join(out)
