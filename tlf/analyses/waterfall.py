"""Waterfall plot: best (lowest) percent change from baseline of the sum of the products of the
perpendicular diameters (SPD) of the target lesions, one bar per B-NHL subject, coloured by
best overall response.

The RS001 ADaM has no tumour-measurement dataset (an ADTR would be its home), so the SPD comes
from SDTM TR (`ctx.sdtm`): baseline is the record with TRLOBXFL = Y, post-baseline the
later records of the same test. The plotted changes trace to the TR record of each subject's
best change (and on to the raw tumour form); the BOR counts to ADRS."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from tlf.analyses.base import ALL, Result, count_subjects, denominators, records_of, summarise

# drawn at the shape of the RTF figure box (tlf.rtf.render_figure scales to fit, keeping it)
FIGSIZE = (10.0, 5.75)
LABELLED_BARS = 60     # above this, bars are drawn without per-subject labels
BOR_COLORS = {"CR": "#1a9850", "PR": "#91cf60", "SD": "#fdae61", "PD": "#d73027", "NE": "0.6"}
_TR_COLS = ["USUBJID", "TRSEQ", "TRTESTCD", "TRSTRESN", "TRLOBXFL", "TRDY", "TREVAL"]


def read_tr(ctx, spec) -> pd.DataFrame:
    """SDTM TR's SPD records: no ADaM dataset (an ADTR) holds them yet."""
    return ctx.sdtm("TR", _TR_COLS)


def best_change(tr: pd.DataFrame, testcd: str, evaluator: str | None = None) -> pd.DataFrame:
    """Per subject: BASE, the best (minimum) post-baseline percent change PCHG and the TRSEQ
    and TRDY of the record that gave it. Subjects without a positive baseline or without a
    post-baseline value have no row (a percent change is not defined)."""
    t = tr[(tr["TRTESTCD"] == testcd) & tr["TRSTRESN"].notna()]
    if evaluator:
        t = t[t["TREVAL"] == evaluator]
    base = (t[t["TRLOBXFL"] == "Y"].sort_values(["USUBJID", "TRDY"], kind="stable")
            .drop_duplicates("USUBJID", keep="last")
            .rename(columns={"TRSTRESN": "BASE", "TRDY": "BASEDY"})[["USUBJID", "BASE", "BASEDY"]])
    post = t.merge(base, on="USUBJID")
    post = post[(post["TRDY"] > post["BASEDY"]) & (post["BASE"] > 0)]
    post = post.assign(PCHG=100 * (post["TRSTRESN"] - post["BASE"]) / post["BASE"])
    best = post.sort_values(["USUBJID", "PCHG", "TRDY"], kind="stable").drop_duplicates("USUBJID")
    return best[["USUBJID", "BASE", "PCHG", "TRSEQ", "TRDY"]].reset_index(drop=True)


def waterfall(ctx, spec) -> Result:
    """params: testcd (TR test of the SPD, default SUMPPD), evaluator (TREVAL, default
    INVESTIGATOR), bor_paramcd (ADRS best overall response, default BOR), colors (BOR ->
    colour), reference_lines (% change lines, e.g. [-50] for the Lugano PR threshold)."""
    p = spec.params
    groups = ctx.groups(spec)
    best = best_change(read_tr(ctx, spec), p.get("testcd", "SUMPPD"),
                       p.get("evaluator", "INVESTIGATOR"))
    adrs = ctx.dataset("ADRS", ["USUBJID", "ASEQ", "PARAMCD", "AVALC"])
    bor = adrs[adrs["PARAMCD"] == p.get("bor_paramcd", "BOR")]
    subjects = groups.frame["USUBJID"].unique()
    best = best[best["USUBJID"].isin(subjects)]
    best = best.merge(bor[["USUBJID", "AVALC"]].rename(columns={"AVALC": "BOR"}), on="USUBJID",
                      how="left")
    best["BOR"] = best["BOR"].fillna("NE").replace("", "NE")
    plotted = records_of(best, "TR", seq="TRSEQ").assign(PARAMCD="BESTPCHG")
    ard_s, mem_s = summarise(plotted, "PCHG", groups, spec.id,
                             stats=("n", "median", "min", "max"), unit="%", digits=1)
    bor_rec = records_of(bor[bor["USUBJID"].isin(best["USUBJID"])], "ADRS")
    ard_b, mem_b = count_subjects(bor_rec.assign(VARLVL=bor_rec["AVALC"]), groups, spec.id)
    n_ard, n_mem = denominators(groups, ctx.adsl, spec.id)
    ard = pd.concat([n_ard, ard_s, ard_b], ignore_index=True)
    members = pd.concat([n_mem, mem_s, mem_b], ignore_index=True)
    level = groups.frame[groups.frame["GRP1LVL"] != ALL] if groups.var else groups.frame
    fig = _figure(best.merge(level[["USUBJID", "GRP1LVL"]], on="USUBJID", how="left"), p,
                  groups)
    return Result(ard, members, figures=[fig],
                  method="Best percent change = minimum over post-baseline assessments of "
                         "100 (SPD - baseline SPD) / baseline SPD; SPD from SDTM TR (no ADaM "
                         "tumour dataset).")


def _figure(best: pd.DataFrame, p: dict, groups) -> Figure:
    colors = {**BOR_COLORS, **dict(p.get("colors", {}))}
    best = best.sort_values(["PCHG", "USUBJID"], ascending=[False, True], kind="stable")
    best = best.reset_index(drop=True)
    fig = Figure(figsize=FIGSIZE)
    ax = fig.subplots()
    x = np.arange(len(best))
    many = len(best) > LABELLED_BARS
    ax.bar(x, best["PCHG"], color=[colors.get(b, "0.6") for b in best["BOR"]],
           edgecolor="none" if many else "black", linewidth=0.4, width=1.0 if many else 0.8)
    for y in p.get("reference_lines", [-50]):
        ax.axhline(float(y), color="black", ls="--", lw=0.8)
    ax.axhline(0, color="black", lw=0.8)
    if many:   # thousands of bars: a label (and a matplotlib tick object) per bar is noise
        ax.set_xticks([])
        ax.set_xlabel(f"{len(best)} subjects, ordered by best change")
    else:
        ax.set_xticks(x)
        # the group under each bar (its first word, e.g. "DL3"): colour already says the BOR
        short = {lv: lv.split()[0] for lv in groups.levels if lv != ALL and lv.split()}
        ax.set_xticklabels([short.get(g, "") for g in best["GRP1LVL"]], fontsize=7)
        ax.set_xlabel("Subjects (dose level), ordered by best change")
    ax.set_ylabel("Best % change from baseline in SPD")
    top = max(10.0, float(np.nanmax(best["PCHG"])) + 10) if len(best) else 10.0
    ax.set_ylim(-105, top)
    present = [b for b in colors if b in set(best["BOR"])]
    ax.legend(handles=[Patch(color=colors[b], label=b) for b in present],
              title="Best overall response", fontsize=8, title_fontsize=8, loc="upper right")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
