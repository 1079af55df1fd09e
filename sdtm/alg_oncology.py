"""Algorithms for the oncology response domains (TU, TR, RS), vectorised like sdtm.algorithms.

- `split_field_ct`   for `split:` specs: the raw field an item names, through controlled
                     terminology like assign_ct (decode-aware); the item may carry its own
                     `codelist:` and `map:` (an RS form mixes ONCRSR responses and NY answers).
- `product`          the product of numeric fields (a lesion's LDi x SDi -> PPD).
- `visit_value`      a field of another form recorded at the same EDC visit (SUBJECT, FOLDER,
                     FOLDERSEQ), optionally through CT: the imaging method and evaluator of the
                     response assessment apply to the lesion records of that visit.
- `visit_sum_product` per record, the sum over the source form's records at the same visit
                     (optionally only those matching `where:`) of the product of fields: the
                     Lugano sum of the products of the target lesions' diameters (SPD).
- `lobxfl_by`        --LOBXFL per subject and a set of variables (per lesion and test in TR),
                     by the rules of alg_findings.last_before_exposure.

Values an algorithm cannot derive for a reason the data should fix are reported in
`ctx.issues`, never dropped silently.
"""
from __future__ import annotations

import dataclasses
from functools import reduce
from operator import mul

import numpy as np
import pandas as pd

from clinpipe.errors import ConfigError
from sdtm import metadata
from sdtm.alg_findings import _last_before, exposure_ref, number_text
from sdtm.algorithms import Algorithm, AssignCT
from sdtm.distinct import Encoded, align, combine, distinct_args

VISIT_KEYS = ["SUBJECT", "FOLDER", "FOLDERSEQ"]   # one EDC visit (a repeat of a folder counts apart)
_TMP = "_CT_VALUE"


# -- helpers -----------------------------------------------------------------------------------

def _assign_ct(ctx, var, values: pd.Series, decode: pd.Series, options: dict) -> pd.Series:
    """assign_ct over computed values (and their decodes) with the given codelist/map options:
    the same lookup, the same issues, one implementation."""
    # a source of just these two columns: assign_ct reads nothing else of the records
    src = pd.DataFrame({_TMP: values.astype(object), f"{_TMP}_DEC": decode.astype(object)}, index=values.index)
    sub = dataclasses.replace(ctx, src=src, out=pd.DataFrame(index=src.index))
    return AssignCT().run(sub, dataclasses.replace(var, arg=_TMP, options=options))


def _check_item_options(item: dict, where: str) -> dict:
    """An item's own codelist/map, checked as spec.py checks a variable's (at first use: the
    loader does not look inside split items)."""
    options = {k: item[k] for k in ("codelist", "map") if k in item}
    if "codelist" in options:
        cl = metadata.codelist(str(options["codelist"]))
        for raw, value in (options.get("map") or {}).items():
            if cl.lookup(str(value)) is None and not cl.extensible:
                raise ConfigError(f"map value {value!r} (for {raw!r}) is not in non-extensible codelist "
                                  f"{cl.short} ({cl.code})", field=where)
    return options


def _raw_fields(var, refs) -> list[str]:
    """The references that are raw fields (to check when the spec loads), not variables of
    the domain mapped above."""
    try:
        dom = metadata.domain(var.name[:2])
    except ConfigError:          # a SUPP-- QNAM need not start with a domain name
        dom = None
    return [r for r in refs if not (dom is not None and dom.has(r))]


def _numbers(ctx, refs) -> list[pd.Series]:
    return [pd.to_numeric(ctx.column(r), errors="coerce") for r in refs]


# -- the algorithms ----------------------------------------------------------------------------

class SplitFieldCT(Algorithm):
    """{split_field_ct: field, codelist: ONCRSR, map: {...}}: for `split:` specs, the raw field
    the item names under this key, through CT like assign_ct. An item's own `codelist:` /
    `map:` keys replace the spec's for that item's rows; an item with neither (and a spec
    with neither) gives the value as collected."""
    options = ("codelist", "map")

    def run(self, ctx, var):
        out = pd.Series("", index=ctx.src.index, dtype=object)
        for k, item in enumerate(ctx.spec_split):
            rows = ctx.src["_ITEM"] == k
            name = item.get(var.arg, "")
            if not name:
                continue
            options = _check_item_options(item, f"split item {k} ({name})") or dict(var.options)
            values = ctx.src.loc[rows, name].astype(object)
            if not options:
                out[rows] = values
                continue
            dec = f"{name}_DEC"
            decode = ctx.src.loc[rows, dec] if dec in ctx.src.columns else values
            out[rows] = _assign_ct(ctx, var, values, decode, options)
        return out


class Product(Algorithm):
    """{product: [TLLDI, TLSDI]}: the product of numeric fields or variables as canonical
    text ('1120'); empty when any factor is missing or not a number."""

    def fields(self, var):
        return _raw_fields(var, list(var.arg))

    def run(self, ctx, var):
        return number_text(reduce(mul, _numbers(ctx, var.arg)))


class VisitValue(Algorithm):
    """{visit_value: RSNHL.RSMETH, codelist: METHOD, map: {PETCT: PET/CT SCAN}}: the field of
    another form at the same EDC visit (SUBJECT, FOLDER, FOLDERSEQ; the first active record
    if there are several), through CT when `codelist`/`map` are given; empty when the other
    form has no record at that visit.

    `fields()` names no field: a FORM.FIELD there would make the engine join the subject's
    first record of that form and count it as mapped into this domain, which a per-visit
    look-up is not. The reference is checked when the spec runs instead."""
    options = ("codelist", "map")

    def forms(self, var):
        return {str(var.arg).rpartition(".")[0]}

    def run(self, ctx, var):
        form, _, fld = str(var.arg).rpartition(".")
        other = ctx.raw.get(form)
        if other is None or fld not in other.columns:
            raise ConfigError(f"visit_value {var.arg!r}: no such form field", field=var.name,
                              hint="write FORM.FIELD of a form of the study")
        cols = [fld] + ([f"{fld}_DEC"] if f"{fld}_DEC" in other.columns else [])
        first = (other.sort_values("RECORDID", key=lambda s: s.astype(int))
                 .drop_duplicates(VISIT_KEYS)[VISIT_KEYS + cols])
        found = ctx.src[VISIT_KEYS].merge(first, on=VISIT_KEYS, how="left").set_index(ctx.src.index)
        values = found[fld].fillna("").astype(object)
        if not var.options:
            return values
        decode = found[cols[-1]].fillna("").astype(object)
        return _assign_ct(ctx, var, values, decode, dict(var.options))


class VisitSumProduct(Algorithm):
    """{visit_sum_product: [TLLDI, TLSDI], where: {TLCAT: T}}: for each record, the sum over
    the active records of its own form at the same visit that match `where` (field: code) of
    the product of the fields -- the Lugano SPD. Empty when any of those records lacks a
    factor (an incomplete sum is not a sum) or none matches."""
    options = ("where",)

    def fields(self, var):
        return [*var.arg, *(var.options.get("where") or {})]

    def run(self, ctx, var):
        forms = ctx.src["FORM"].unique()
        if len(forms) == 0:
            return pd.Series("", index=ctx.src.index, dtype=object)
        frame = ctx.raw[forms[0]]
        for fld, code in (var.options.get("where") or {}).items():
            frame = frame[frame[fld] == str(code)]
        factors = [pd.to_numeric(frame[f], errors="coerce") for f in var.arg]
        prod = reduce(mul, factors)
        per_visit = pd.DataFrame({**{k: frame[k] for k in VISIT_KEYS}, "p": prod}).groupby(VISIT_KEYS)["p"]
        sums = per_visit.sum().where(per_visit.count() == per_visit.size()).rename("spd").reset_index()
        found = ctx.src[VISIT_KEYS].merge(sums, on=VISIT_KEYS, how="left").set_index(ctx.src.index)
        return number_text(found["spd"])


class LobxflBy(Algorithm):
    """{lobxfl_by: TRDTC, by: [TRLNKID, TRTESTCD], codelist: NY}: 'Y' on the last record with a
    result (--ORRES not empty) before the first study treatment, per subject and the `by`
    variables, by the rules of alg_findings.last_before_exposure (a record on the treatment
    date without times on both sides is not flagged). For series --TESTCD alone does not
    identify: TR has one series per lesion and test, TU one record per lesion. The reference
    is DM.RFXSTDTC (first exposure to protocol-specified treatment)."""
    options = ("by", "codelist")

    def run(self, ctx, var):
        out = ctx.out
        index = ctx.src.index
        if ctx.ref_exposure is None:
            return pd.Series("", index=index, dtype=object)
        by = list(var.options.get("by") or [])
        dtc = ctx.encode_column(var.arg, out[var.arg])
        rows = dtc.index
        if by:
            # the series key is the by values joined with '|', built once per distinct combination
            columns = [align(ctx.encode_column(b, out[b]), rows) for b in by]
            combo = combine(columns)
            parts = [a.fillna("").astype(str) for a in distinct_args(columns, combo)]
            codes, keys = pd.factorize(np.array(["|".join(v) for v in zip(*parts)], dtype=object))
            key = Encoded(codes[combo.codes], np.asarray(keys, dtype=object), object, rows)
        else:
            key = Encoded(np.zeros(len(rows), dtype=np.intp), np.array([""], dtype=object), object, rows)
        prefix = var.arg[:-3]
        if f"{prefix}ORRES" in out.columns:
            result = align(ctx.encode_column(f"{prefix}ORRES", out[f"{prefix}ORRES"]), rows)
            has = result.values((result.distinct().fillna("").astype(str) != "").to_numpy())
        else:
            has = np.ones(len(rows), dtype=bool)
        never = np.zeros(len(rows), dtype=bool)
        subject = align(ctx.encode_column("USUBJID", out["USUBJID"]), rows)
        return _last_before(subject, key, dtc, exposure_ref(subject, ctx.ref_exposure), has, never)


EXTRA = {
    "split_field_ct": SplitFieldCT(),
    "product": Product(),
    "visit_value": VisitValue(),
    "visit_sum_product": VisitSumProduct(),
    "lobxfl_by": LobxflBy(),
}
