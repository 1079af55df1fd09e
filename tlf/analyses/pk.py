"""Cellular kinetics: NCA parameter summaries from ADPP and the concentration-time profile
figure from ADPC, by dose level and bioanalytical method (ADPP/ADPC PARCAT1: qPCR, flow).

ADPP has one record per subject x method x NCA parameter; NCACD names the parameter
independently of the method (CMAX for both CMAXQ and CMAXF), so the catalogue lists NCA
codes once and every method gets the same rows, one page per method.
"""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clinpipe.errors import ConfigError
from tlf.analyses.base import GEO_STATS, Result, denominators, layout_rows, records_of, summarise
from tlf.ard import finish_ard

# drawn at the shape of the RTF figure box (tlf.rtf.render_figure scales to fit, keeping it)
FIGSIZE = (10.0, 5.75)
TIME_ONLY_STATS = ("n", "median", "min", "max")
PK_METHOD = ("Non-compartmental analysis (linear-up/log-down); SD with n-1; CV% = 100 SD/mean; "
             "geometric CV% = 100 sqrt(exp(s^2) - 1), s the SD of log values.")
PROFILE_STATS = ("n", "median", "q1", "q3", "min", "max")
_UNITS = {"day": "DAYS"}       # the ARD says times in DAYS (contract)


def _method_labels(p: dict, df: pd.DataFrame) -> dict:
    labels = dict(p.get("methods", {}))
    for m in df["PARCAT1"].dropna().unique():
        labels.setdefault(m, m)
    return labels


def _method_order(labels: dict, present) -> list[str]:
    return [m for m in labels if m in set(present)]


def parameters(ctx, spec) -> Result:
    """params: ncacd (NCA parameter codes, display order), time_params (codes summarised by
    n/median/min/max only, e.g. [TMAX]), labels (NCACD -> row label; default ADPP PARAM),
    methods (PARCAT1 -> page label, display order), digits (ADPP PARAMCD or NCACD ->
    decimals of min/max, one more for mean/SD/median; default 1)."""
    p = spec.params
    if "ncacd" not in p:
        raise ConfigError(f"output {spec.id}: params needs ncacd (NCA parameter codes)",
                          field="params", hint="e.g. ncacd: [CMAX, TMAX, AUCLST]")
    codes = list(p["ncacd"])
    time_codes = set(p.get("time_params", ["TMAX"]))
    digits = dict(p.get("digits", {}))
    groups = ctx.groups(spec)
    df = ctx.dataset("ADPP", ["USUBJID", "ASEQ", "PARAMCD", "PARAM", "NCACD", "PARCAT1",
                              "AVAL", "AVALU"])
    df = df[df["NCACD"].isin(codes)]
    unknown = sorted(set(codes) - set(df["NCACD"]))
    if unknown:
        raise ConfigError(f"output {spec.id}: ADPP has no NCACD {unknown}", field="params.ncacd",
                          hint=f"ADPP NCACD values: {sorted(ctx.dataset('ADPP')['NCACD'].unique())}")
    methods = _method_labels(p, df)
    order = _method_order(methods, df["PARCAT1"])
    labels = dict(p.get("labels", {}))
    rec = records_of(df, "ADPP").assign(GRP2="PARCAT1", GRP2LVL=df["PARCAT1"].to_numpy())
    ards, members = [], []
    rows = []
    for method in order:
        page = methods[method]
        for code in codes:
            one = rec[(rec["PARCAT1"] == method) & (rec["NCACD"] == code)]
            if one.empty:
                continue
            unit = str(one["AVALU"].iloc[0])
            stats = TIME_ONLY_STATS if code in time_codes else GEO_STATS
            paramcd = str(one["PARAMCD"].iloc[0])
            # methods differ by orders of magnitude: decimals by PARAMCD first, then NCACD
            places = int(digits.get(paramcd, digits.get(code, 1)))
            a, m = summarise(one, "AVAL", groups, spec.id, stats=stats,
                             unit=_UNITS.get(unit, unit), digits=places)
            ards.append(a)
            members.append(m)
            label = labels.get(code) or str(one["PARAM"].iloc[0])
            if unit and f"({unit})" not in label:
                label = f"{label} ({unit})"
            k = {"PARAMCD": paramcd, "GRP2": "PARCAT1", "GRP2LVL": method, "_page": page}
            rows.append((label, k, ""))
            rows.append(("  n", k, "{n}"))
            if code in time_codes:
                rows += [("  Median", k, "{median}"), ("  Min, Max", k, "{min}, {max}")]
            else:
                rows += [("  Mean (SD)", k, "{mean} ({sd})"), ("  CV%", k, "{cv}"),
                         ("  Geometric mean (geometric CV%)", k, "{geomean} ({geocv})"),
                         ("  Median", k, "{median}"), ("  Min, Max", k, "{min}, {max}")]
    n_ard, n_members = denominators(groups, ctx.adsl, spec.id)
    ard = pd.concat([n_ard, *ards], ignore_index=True)
    members = pd.concat([n_members, *members], ignore_index=True)
    table = layout_rows(ard, groups, rows, label_header="Parameter\\line Statistic",
                        page_by="METHOD")
    table.widths = [3.2] + [1.2] * len(groups.levels)
    return Result(ard, members, table, method=PK_METHOD)


def profile_records(ctx, spec) -> pd.DataFrame:
    """ADPC samples the NCA used (ANL01FL = Y), with a BLQ sample before Tmax as 0 (the SAP
    rule ADPC records), keyed by PARAMCD and the nominal time point (VARLVL)."""
    df = ctx.dataset("ADPC", ["USUBJID", "ASEQ", "PARAMCD", "PARAM", "PARCAT1", "AVAL", "AVALU",
                              "BLQFL", "ANL01FL", "ATPT", "ATPTN", "NFRLT", "AFRLT", "ALLOQ"])
    df = df[df["ANL01FL"] == "Y"].copy()
    df["VALUE"] = df["AVAL"].where(df["BLQFL"] != "Y", 0.0)
    df = df[df["VALUE"].notna()]
    return records_of(df.assign(VARLVL=df["ATPT"]), "ADPC")


def profiles(ctx, spec) -> Result:
    """params: time (NFRLT nominal or AFRLT actual days; the x axis), methods (PARCAT1 ->
    panel title), ylabel (PARCAT1 -> y axis label; default PARAM)."""
    p = spec.params
    time_var = p.get("time", "NFRLT")
    if time_var not in ("NFRLT", "AFRLT"):
        raise ConfigError(f"output {spec.id}: params.time must be NFRLT or AFRLT",
                          field="params.time", hint="nominal (NFRLT) or actual (AFRLT) days")
    groups = ctx.groups(spec)
    rec = profile_records(ctx, spec)
    ard, members = summarise(rec, "VALUE", groups, spec.id, stats=PROFILE_STATS, digits=1)
    ard["UNIT"] = np.where(ard["STAT"] == "n", "",
                           ard["PARAMCD"].map(rec.drop_duplicates("PARAMCD")
                                              .set_index("PARAMCD")["AVALU"]).fillna(""))
    ard = finish_ard(ard)
    n_ard, n_members = denominators(groups, ctx.adsl, spec.id)
    # x position of each time point: its nominal time, or the median actual time of its samples
    xpos = rec.groupby(["PARAMCD", "VARLVL"])[time_var].median().rename("X").reset_index()
    methods = _method_labels(p, rec)
    order = _method_order(methods, rec["PARCAT1"])
    fig = _profile_figure(ard, xpos, rec, groups, order, methods, p, time_var)
    return Result(pd.concat([n_ard, ard], ignore_index=True),
                  pd.concat([n_members, members], ignore_index=True), figures=[fig],
                  method="Median per nominal time point "
                         "of the samples used by the NCA (ADPC ANL01FL); below LLOQ before Tmax "
                         "counted as 0 and not drawn on the log scale; below LLOQ after Tmax "
                         "excluded.")


def _profile_figure(ard, xpos, rec, groups, order, methods, p, time_var) -> Figure:
    fig = Figure(figsize=FIGSIZE)
    axes = fig.subplots(1, max(len(order), 1), squeeze=False)[0]
    colors = matplotlib.colormaps["tab10"]
    wide = ard[ard["STAT"].isin(["median", "n"])].pivot_table(
        index=["PARAMCD", "VARLVL", "GRP1LVL"], columns="STAT", values="STATVAL").reset_index()
    wide = wide.merge(xpos, on=["PARAMCD", "VARLVL"])
    params_of = rec.drop_duplicates("PARCAT1").set_index("PARCAT1")
    ylabels = dict(p.get("ylabel", {}))
    for ax, method in zip(axes, order):
        code = params_of.loc[method, "PARAMCD"]
        sub = wide[wide["PARAMCD"] == code]
        levels = [lv for lv in groups.levels if lv in set(sub["GRP1LVL"])]
        for i, lv in enumerate(levels):
            g = sub[sub["GRP1LVL"] == lv].sort_values("X")
            # log scale: a median of 0 (BLQ before Tmax counted as 0) cannot be drawn
            med = g["median"].where(g["median"] > 0)
            ax.plot(g["X"], med, color=colors(i), marker="o", ms=4, lw=1.4, label=lv)
        lloq = rec.loc[rec["PARAMCD"] == code, "ALLOQ"].dropna().unique()
        if len(lloq) == 1:      # one assay limit: show it; several (sites) would mislead
            ax.axhline(float(lloq[0]), color="0.4", ls=":", lw=1)
            ax.annotate("LLOQ", (1, float(lloq[0])), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=7, color="0.4")
        ax.set_yscale("log")
        ax.set_xscale("symlog", linthresh=10)
        ticks = sorted(sub["X"].unique())
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=8)
        ax.set_xlabel("Nominal day after infusion" if time_var == "NFRLT"
                      else "Actual day after infusion (median per time point)")
        ax.set_ylabel(ylabels.get(method, params_of.loc[method, "PARAM"]), fontsize=9)
        ax.set_title(methods[method], fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=max(len(names), 1), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
