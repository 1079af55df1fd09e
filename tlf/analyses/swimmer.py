"""Swimmer plot: one bar per subject from the infusion to the last follow-up (ADSL LSTALVDT, or
death), coloured by dose level, with the response assessments (ADRS overall response per
visit, the disease's own criteria), progression and death marked; longest bar on top.

The ARD holds what the figure shows per column group: the follow-up duration of the bars
(n, median, min, max; members the ADSL records plotted), subjects with at least one
assessment of each response (members the ADRS records drawn) and deaths."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from clinpipe.errors import ConfigError
from tlf.analyses.base import ALL, Result, count_subjects, denominators, records_of, summarise

# drawn at the shape of the RTF figure box (tlf.rtf.render_figure scales to fit, keeping it)
FIGSIZE = (10.0, 5.75)
# response -> (marker, face colour, label); a sponsor may restyle them in params.markers
MARKERS = {
    "CR": ("o", "black", "CR"),
    "CRI": ("o", "white", "CRi"),
    "PR": ("^", "black", "PR"),
    "SD": ("s", "0.6", "SD"),
    "NR": ("v", "white", "NR"),
    "PD": ("D", "red", "PD"),
    "RELAPSE": ("P", "red", "Relapse"),
}
DEATH = ("X", "black", "Death")
ONGOING = (">", "black", "Ongoing at cut-off")


def _days(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (pd.to_datetime(later, errors="coerce") - pd.to_datetime(earlier, errors="coerce")
            ).dt.days.astype(float)


def subject_bars(ctx, spec, groups) -> pd.DataFrame:
    """One row per plotted subject: GRP1LVL, start (infusion), duration in days to the last
    known alive date or death, death day, ongoing flag."""
    p = spec.params
    adsl = ctx.dataset("ADSL", ["USUBJID", "SUBJID", "DISEASCD", "TRTSDT", "LSTALVDT", "DTHDT",
                                "EOSSTT"])
    frame = groups.frame
    if groups.var:
        frame = frame[frame["GRP1LVL"] != ALL]
    bars = frame.merge(adsl, on="USUBJID")
    end = pd.concat([pd.to_datetime(bars["LSTALVDT"], errors="coerce"),
                     pd.to_datetime(bars["DTHDT"], errors="coerce")], axis=1).max(axis=1)
    bars["DUR"] = _days(end, bars["TRTSDT"])
    bars["DTHDAY"] = _days(bars["DTHDT"], bars["TRTSDT"])
    bars["ONGOING"] = bars["EOSSTT"].isin(list(p.get("ongoing_status", ["ONGOING"])))
    return bars[bars["DUR"].notna()].reset_index(drop=True)


def assessments(ctx, spec, bars: pd.DataFrame) -> pd.DataFrame:
    """The ADRS per-visit overall responses of the plotted subjects, each under its disease's
    criteria (params.assessment: DISEASCD -> ADRS PARAMCD), with DAY from the infusion."""
    by_disease = dict(spec.params.get("assessment", {}))
    if not by_disease:
        raise ConfigError(f"output {spec.id}: params needs assessment (DISEASCD -> ADRS PARAMCD)",
                          field="params.assessment", hint="e.g. {B-NHL: OVRLUG, B-ALL: OVRNCCN}")
    adrs = ctx.dataset("ADRS", ["USUBJID", "ASEQ", "PARAMCD", "AVALC", "ADT"])
    key = pd.DataFrame({"DISEASCD": list(by_disease), "PARAMCD": list(by_disease.values())})
    subj = bars[["USUBJID", "GRP1", "GRP1LVL", "DISEASCD", "TRTSDT"]].merge(key, on="DISEASCD")
    rec = adrs.merge(subj, on=["USUBJID", "PARAMCD"])
    rec["DAY"] = _days(rec["ADT"], rec["TRTSDT"])
    return records_of(rec[rec["DAY"].notna()], "ADRS")


def swimmer(ctx, spec) -> Result:
    """params: assessment (DISEASCD -> ADRS PARAMCD of the per-visit response),
    ongoing_status (ADSL EOSSTT values drawn as ongoing), markers (AVALC -> [marker, colour,
    label]), xlabel."""
    groups = ctx.groups(spec)
    bars = subject_bars(ctx, spec, groups)
    rec = assessments(ctx, spec, bars)
    # the kernels attach the column groups themselves (and the total)
    bar_rec = records_of(bars.drop(columns=["GRP1", "GRP1LVL"]), "ADSL", seq=None
                         ).assign(PARAMCD="FUDUR")
    ard_d, mem_d = summarise(bar_rec, "DUR", groups, spec.id, stats=("n", "median", "min", "max"),
                             unit="DAYS", digits=0)
    ard_r, mem_r = count_subjects(rec.drop(columns=["GRP1", "GRP1LVL"]).assign(
        VARLVL=rec["AVALC"]), groups, spec.id)
    deaths = bar_rec[bar_rec["DTHDAY"].notna()].assign(PARAMCD="DEATH")
    ard_x, mem_x = count_subjects(deaths, groups, spec.id)
    n_ard, n_mem = denominators(groups, ctx.adsl, spec.id)
    ard = pd.concat([n_ard, ard_d, ard_r, ard_x], ignore_index=True)
    members = pd.concat([n_mem, mem_d, mem_r, mem_x], ignore_index=True)
    fig = _figure(bars, rec, groups, spec.params)
    return Result(ard, members, figures=[fig],
                  method="Bars from the infusion (Day 0) to the last known alive date or death "
                         "(ADSL LSTALVDT, DTHDT); markers: overall response per assessment (ADRS).")


def _figure(bars: pd.DataFrame, rec: pd.DataFrame, groups, p: dict) -> Figure:
    markers = {**MARKERS, **{k: tuple(v) for k, v in p.get("markers", {}).items()}}
    bars = bars.sort_values(["DUR", "USUBJID"], ascending=[True, True], kind="stable")
    bars = bars.reset_index(drop=True)
    bars["Y"] = np.arange(len(bars))
    fig = Figure(figsize=FIGSIZE)
    ax = fig.subplots()
    colors = matplotlib.colormaps["tab10"]
    levels = [lv for lv in groups.levels if lv in set(bars["GRP1LVL"])]
    handles = []
    for i, lv in enumerate(levels):
        b = bars[bars["GRP1LVL"] == lv]
        ax.barh(b["Y"], b["DUR"], height=0.6, color=colors(i), alpha=0.55, linewidth=0)
        handles.append(Line2D([], [], color=colors(i), lw=6, alpha=0.55, label=lv))
    pos = rec.merge(bars[["USUBJID", "Y"]], on="USUBJID")
    for code, (mk, face, label) in markers.items():
        r = pos[pos["AVALC"] == code]
        if r.empty:
            continue
        ax.scatter(r["DAY"], r["Y"], marker=mk, s=22, facecolors=face, edgecolors="black",
                   linewidths=0.7, zorder=3)
        handles.append(Line2D([], [], marker=mk, ls="", markerfacecolor=face,
                              markeredgecolor="black", label=label))
    for (mk, face, label), sel, x in ((DEATH, bars["DTHDAY"].notna(), bars["DTHDAY"]),
                                      (ONGOING, bars["ONGOING"], bars["DUR"])):
        if sel.any():
            ax.scatter(x[sel] + (8 if mk == ">" else 0), bars.loc[sel, "Y"], marker=mk, s=26,
                       color=face, zorder=4)
            handles.append(Line2D([], [], marker=mk, ls="", color=face, label=label))
    # subject labels only while they stay legible on the fixed page (and no tick object per
    # subject when there are thousands)
    if len(bars) <= 60:
        ax.set_yticks(bars["Y"])
        ax.set_yticklabels(bars["SUBJID"].astype(str), fontsize=5 if len(bars) > 30 else 6)
    else:
        ax.set_yticks([])
    ax.set_ylim(-0.8, len(bars) - 0.2)
    ax.set_xlim(left=0)
    ax.set_xlabel(p.get("xlabel", "Days from infusion"))
    ax.set_ylabel("Subject")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(handles=handles, fontsize=7, loc="lower right", frameon=True)
    fig.tight_layout()
    return fig
