"""Algorithms for the interventions, events and disposition specs (EX, PR, CM, MH, DS, IE).

`ie_criterion`: IETEST / IECAT of an eligibility criterion from the enrolment form's
criterion code (IN01, EX02, ...) and its EDC decode ("Inclusion 3: measurable disease ...").
The text rule is the one TI uses (sdtm/trial_design.py): the decode without its leading
"Inclusion n:" / "Exclusion n:" label, first letter upper-cased, so IE.IETEST matches
TI.IETEST for the same IETESTCD. The category comes from the code's prefix (IN -> INCLUSION,
EX -> EXCLUSION, CT C66797). A code with neither prefix is reported as an issue, not guessed.
"""
from __future__ import annotations

import re

import pandas as pd

from sdtm.algorithms import Algorithm

_LABEL = re.compile(r"^(inclusion|exclusion)\s*\d+\s*:\s*", re.IGNORECASE)
_CATEGORY = {"IN": "INCLUSION", "EX": "EXCLUSION"}


def criterion_text(decode: str) -> str:
    """'Inclusion 3: measurable disease' -> 'Measurable disease'."""
    body = _LABEL.sub("", decode).strip()
    return body[:1].upper() + body[1:]


def criterion_category(code: str) -> str | None:
    return _CATEGORY.get(code[:2].upper()) if code else ""


class IECriterion(Algorithm):
    """{ie_criterion: IECRIT, part: IETEST|IECAT}: the criterion's text or category, from the
    code field and its `_DEC` decode column. Works per distinct code, not per record."""
    options = ("part", "codelist")

    def fields(self, var):
        return [var.arg]

    def run(self, ctx, var):
        part = var.options.get("part", var.name)
        code = ctx.column(var.arg).fillna("").astype(str)
        if part == "IECAT":
            table = {c: criterion_category(c) for c in code.unique()}
            for idx in code.index[code.map(table).isna()]:
                ctx.issues.append((var.name, idx, code[idx],
                                   "criterion code starts with neither IN nor EX: no IECAT"))
            return code.map(table).fillna("").astype(object)
        if part != "IETEST":
            raise ValueError(f"ie_criterion part must be IETEST or IECAT, not {part!r}")
        dec_name = f"{var.arg}_DEC"
        decode = ctx.src[dec_name].fillna("").astype(str) if dec_name in ctx.src.columns else code
        table = {d: criterion_text(d) for d in decode.unique()}
        return pd.Series(decode.map(table), index=code.index, dtype=object)


EXTRA = {"ie_criterion": IECriterion()}
