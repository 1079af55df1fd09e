"""Kaplan-Meier figures: one figure per ADTTE parameter, one curve per column group.

The curves are `tlf.stats.compute_km` fits (via `base.km_table`, so the legend's numbers and
the ARD are the same numbers); the ARD adds the numbers at risk printed under the plot, one
cell per tick (VARLVL "AT RISK MONTH <m>", STAT n) whose members are the records still at
risk then, so every printed number traces to its subjects.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib import transforms
from matplotlib.figure import Figure

from tlf import format as F
from tlf.analyses.base import (
    LANDMARK_MONTHS,
    Result,
    _grouped,
    denominators,
    in_level_order,
    km_table,
)
from tlf.analyses.tte import METHOD as KM_METHOD
from tlf.analyses.tte import tte_records
from tlf.ard import CELL_KEYS, finish_ard, finish_members

METHOD = (KM_METHOD + " Censored observations marked |. Numbers at risk: subjects with "
          "follow-up time at or beyond the tick.")
# colour-blind-safe (Okabe-Ito), fixed so a group keeps its colour between runs
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
FIGSIZE = (8.0, 4.6)          # inches: the RTF embeds the PNG at this size
AT_RISK = "AT RISK MONTH "


def at_risk(records: pd.DataFrame, groups, outid: str, ticks_months
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subjects at risk (AVAL >= tick) per group, parameter and tick."""
    rec = _grouped(records, groups, ("AVAL",))
    ticks = pd.DataFrame({"TICK": list(ticks_months)})
    cross = rec.merge(ticks, how="cross")
    cross = cross[cross["AVAL"] >= cross["TICK"] * F.DAYS_PER_MONTH]
    cross["VARLVL"] = AT_RISK + cross["TICK"].map(_tick_text)
    # every (group, parameter, tick) gets a row, 0 where nobody is left
    keys = rec[["GRP1", "GRP1LVL", "GRP2", "GRP2LVL", "PARAMCD"]].drop_duplicates()
    grid = keys.merge(ticks, how="cross")
    grid["VARLVL"] = AT_RISK + grid["TICK"].map(_tick_text)
    n = cross.groupby(CELL_KEYS, sort=False)["USUBJID"].nunique().rename("STATVAL")
    grid = grid.merge(n.reset_index(), on=CELL_KEYS, how="left").fillna({"STATVAL": 0})
    ard = finish_ard(grid.assign(OUTID=outid, POP=groups.pop, STAT="n",
                                 TIMEPT=grid["TICK"].map(_tick_text),
                                 STATC=F.fmt_int(grid["STATVAL"]) if len(grid) else [],
                                 METHOD="NUMBER AT RISK"))
    members = finish_members(cross.assign(ROLE="num"))
    return in_level_order(ard, groups), members


def _tick_text(m) -> str:
    return f"{m:g}"


def _ticks(max_days: float, step: float) -> list[float]:
    last = max(step, math.ceil(F.months(max_days) / step) * step) if max_days > 0 else step
    return [float(x) for x in np.arange(0, last + step / 2, step)]


def km_curves(ctx, spec) -> Result:
    """params: paramcd (ADTTE parameters, one figure each), tick_months (x-axis and
    at-risk ticks, default 3), landmarks (months, for the ARD), ylabel (PARAMCD -> y-axis
    label; default the PARAM without its unit), labels, responders (see tte.tte_records)."""
    p = spec.params
    codes = list(p["paramcd"])
    step = float(p.get("tick_months", 3))
    landmarks = tuple(p.get("landmarks", LANDMARK_MONTHS))
    groups = ctx.groups(spec)
    records, labels = tte_records(ctx, spec)
    ard, members, fits = km_table(records, groups, spec.id, landmarks=landmarks)
    n_ard, n_members = denominators(groups, ctx.adsl, spec.id)
    ticks = {c: _ticks(records.loc[records["PARAMCD"] == c, "AVAL"].max(), step) for c in codes}
    risk_parts = [at_risk(records[records["PARAMCD"] == c], groups, spec.id, ticks[c])
                  for c in codes]
    ard = pd.concat([n_ard, ard, *[a for a, _ in risk_parts]], ignore_index=True)
    members = pd.concat([n_members, members, *[m for _, m in risk_parts]], ignore_index=True)
    figures = [_figure(code, labels, p.get("ylabel", {}), groups, fits, ard, ticks[code])
               for code in codes]
    return Result(ard, members, figures=figures, method=METHOD)


def _figure(code, labels, ylabels, groups, fits, ard, ticks) -> Figure:
    fig = Figure(figsize=FIGSIZE)
    n_lv = len(groups.levels)
    # fixed margins in figure fractions: group names of the at-risk block on the left, the
    # legend (with n, events and median) on the right; the block grows with the groups
    longest = max((len(lv) for lv in groups.levels), default=0)
    left = min(0.32, 0.06 + 0.0072 * longest)      # room for the longest at-risk group name
    width, row = 0.70 - left, 0.042
    risk_h = row * (n_lv + 1)
    bottom = 0.02 + risk_h + 0.11
    ax = fig.add_axes((left, bottom, width, 0.97 - bottom))
    risk = fig.add_axes((left, 0.02, width, risk_h), sharex=ax)
    label = labels.get(code, code).replace(" (Days)", "")
    for i, lv in enumerate(groups.levels):
        colour = COLOURS[i % len(COLOURS)]
        fit = fits.get((groups.var, lv, "", "", code, ""))
        text = f"{lv}\n{_legend_stats(ard, lv, code)}"
        if fit is None or fit.n == 0:
            ax.plot([], [], color=colour, label=text)
            continue
        c = fit.curve
        x = np.concatenate([[0.0], F.months(c["time"].to_numpy())])
        y = 100 * np.concatenate([[1.0], c["surv"].to_numpy()])
        ax.step(x, y, where="post", color=colour, linewidth=1.4, label=text)
        cens = c[c["n_censor"] > 0]
        ax.plot(F.months(cens["time"].to_numpy()), 100 * cens["surv"].to_numpy(),
                linestyle="none", marker="|", markersize=7, markeredgewidth=1.2, color=colour)
    ax.set_xlim(0, ticks[-1])
    ax.set_ylim(0, 102)
    ax.set_xticks(ticks)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel(ylabels.get(code, f"{label} (%)"), fontsize=8)
    ax.set_xlabel("Time (months)", fontsize=8, labelpad=2)
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#dddddd", linewidth=0.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.03, 1.0), fontsize=7, frameon=False,
              borderaxespad=0.0, labelspacing=0.9, handlelength=1.6)
    _risk_table(fig, risk, ard, groups, code, ticks)
    return fig


def _legend_stats(ard, level, code) -> str:
    cell = ard[(ard["GRP1LVL"] == level) & (ard["PARAMCD"] == code) & (ard["VARLVL"] == "")]
    s = cell.set_index("STAT")["STATC"]
    if "n" not in s:
        return "n=0"
    median = s["km_median"] + ("" if s["km_median"] == F.NE else " mo")
    return (f"n={s['n']}, events={s['events']}, median {median}\n"
            f"(95% CI {s['km_median_lcl']}, {s['km_median_ucl']})")


def _risk_table(fig, ax, ard, groups, code, ticks) -> None:
    ax.set_ylim(len(groups.levels) - 0.5, -1.0)
    ax.axis("off")
    names = transforms.blended_transform_factory(fig.transFigure, ax.transData)
    ax.text(0.01, -1.0, "Number at risk", transform=names, fontsize=7, fontweight="bold",
            va="center")
    rows = ard[(ard["PARAMCD"] == code) & ard["VARLVL"].str.startswith(AT_RISK)]
    for i, lv in enumerate(groups.levels):
        colour = COLOURS[i % len(COLOURS)]
        ax.text(0.01, i, lv, transform=names, fontsize=7, color=colour, va="center")
        got = rows[rows["GRP1LVL"] == lv].set_index("TIMEPT")["STATC"]
        for t in ticks:
            ax.text(t, i, got.get(_tick_text(t), "0"), fontsize=7, ha="center", va="center",
                    color=colour)
