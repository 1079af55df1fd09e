"""Algorithms of the safety domains (AE, DD)."""
from __future__ import annotations

import pandas as pd

from sdtm.alg_findings import _raw_refs
from sdtm.algorithms import Algorithm


class Strongest(Algorithm):
    """{strongest: [AEREL, AERELGLO, AERELAX], map: {"1": NOT RELATED, ..., "5": RELATED}}:
    the highest of several collected ordinal codes of one scale (blank ones ignored), through
    `map`; e.g. the relationship to any study treatment from the relationship to each. The
    names are raw fields, read as collected even where an SDTM variable of the same name was
    mapped above (AEREL), so `{strongest: [AEREL]}` is the collected AEREL through `map`. A
    code outside `map` is reported and ignored."""
    options = ("map",)

    def fields(self, var):
        return list(var.arg)

    def run(self, ctx, var):
        mapping = {str(k): str(v) for k, v in (var.options.get("map") or {}).items()}
        rank = {code: i for i, code in enumerate(mapping)}     # map order = the scale's order
        ranks = []
        for f in var.arg:
            raw = (ctx.src[f] if f in ctx.src.columns else ctx.column(f)).fillna("").astype(str)
            r = raw.map(rank)
            for idx in raw.index[r.isna() & (raw != "")]:
                ctx.issues.append((var.name, idx, raw[idx], f"{f} code is not in the spec's map; ignored"))
            ranks.append(r)
        best = pd.concat(ranks, axis=1).max(axis=1)
        terms = pd.Series(list(mapping.values()), dtype=object)
        return best.map(terms).fillna("").astype(object)


class Upper(Algorithm):
    """{upper: DDORRES}: a field or variable in upper case (a standardised free-text result)."""

    def fields(self, var):
        return _raw_refs(var, var.arg)

    def run(self, ctx, var):
        return ctx.column(var.arg).astype(object).fillna("").str.upper()


EXTRA = {"strongest": Strongest(), "upper": Upper()}
