"""Codelists for define.xml: the CDISC CT terms the data use, with their NCI C-codes, from the
project's packaged CT (`sdtm/metadata/ct_sdtm_*.csv`, `adam/metadata/ct_adam_*.csv`).

Only values that occur in the data go in (a 1,000-term LBTESTCD list shrinks to the tests
the study ran). A value an extensible codelist does not hold is the sponsor's extension:
`def:ExtendedValue="Yes"`, no C-code. Decodes: a --TESTCD list is decoded by its paired
--TEST list (same C-code), any other term by its NCI preferred term where that says more
than the submission value; a codelist with no such decode is written as EnumeratedItems.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from adam import metadata as adam_meta
from sdtm import metadata as sdtm_meta
from submission.define_model import Codelist, Term, oid_token

SDTM_CT = sdtm_meta.METADATA_DIR / f"ct_sdtm_{sdtm_meta.CT_VERSION}.csv"
ADAM_CT = adam_meta.METADATA_DIR / f"ct_adam_{adam_meta.CT_VERSION}.csv"


@dataclass(frozen=True)
class CtList:
    code: str
    name: str
    short: str
    extensible: bool
    publishing_set: str                          # SDTM or ADaM
    terms: dict[str, tuple[str, str]]            # submission value -> (C-code, preferred term)


@cache
def _read(path: Path, publishing_set: str) -> dict[str, CtList]:
    rows: dict[str, dict] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            cl = rows.setdefault(r["codelist"], {
                "code": r["codelist"], "name": r["codelist_name"], "short": r["codelist_value"],
                "extensible": r["extensible"] == "Yes", "publishing_set": publishing_set, "terms": {}})
            cl["terms"][r["submission_value"]] = (r["term_code"], r["preferred_term"])
    return {k: CtList(**v) for k, v in rows.items()}


@cache
def ct_lists() -> dict[str, CtList]:
    """Every packaged codelist by C-code; an SDTM list the ADaM file repeats counts as SDTM."""
    adam = _read(ADAM_CT, "ADaM")
    sdtm = _read(SDTM_CT, "SDTM")
    return {**adam, **sdtm}


def find(ref: str) -> CtList | None:
    """A codelist by C-code or by short name (`NY`)."""
    lists = ct_lists()
    if ref in lists:
        return lists[ref]
    return next((cl for cl in lists.values() if cl.short == ref), None)


def _paired(cl: CtList) -> CtList | None:
    """The --TEST list of a --TESTCD list (LBTESTCD -> LBTEST), matched by codelist name."""
    if not cl.short.endswith("CD"):
        return None
    return next((o for o in ct_lists().values() if o.short == cl.short[:-2]), None)


def _decode(value: str, code: str, preferred: str, paired: CtList | None) -> str | None:
    if paired is not None:
        return next((v for v, (c, _) in paired.terms.items() if c == code), None)
    if preferred and preferred.upper() != value.upper():
        return preferred
    return None


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def ct_codelist(cl: CtList, values, standard: str, data_type: str = "text",
                decodes: dict[str, str] | None = None) -> Codelist:
    """`decodes` (value -> decode as the data pair them, e.g. LBTESTCD -> LBTEST) decode the
    sponsor's extended terms, which the CT cannot."""
    paired = _paired(cl)
    terms = []
    for value in sorted({_text(v) for v in values}):
        hit = cl.terms.get(value)
        if hit is None:
            terms.append(Term(value, (decodes or {}).get(value) or None, extended=True))
        else:
            terms.append(Term(value, _decode(value, hit[0], hit[1], paired), hit[0]))
    return Codelist(key=oid_token(cl.short), name=cl.name, data_type=data_type, terms=terms,
                    code=cl.code, standard=standard)


def sponsor_codelist(key: str, name: str, pairs: dict[str, str], data_type: str = "text") -> Codelist:
    """A codelist the sponsor defines (e.g. PARAMCD decoded by PARAM)."""
    terms = [Term(_text(v), pairs[v] or None) for v in sorted(pairs, key=_text)]
    return Codelist(key=key, name=name, data_type=data_type, terms=terms)


class CodelistCollector:
    """Gathers, per codelist, the union of the values every variable using it holds."""

    def __init__(self, standards: dict[str, str]):
        self.standards = standards                   # publishing set -> Standard key
        self._ct: dict[str, tuple[CtList, set, str]] = {}
        self._decodes: dict[str, dict[str, str]] = {}
        self.sponsor: dict[str, Codelist] = {}

    def use(self, ref: str | tuple[str, ...] | None, values, data_type: str,
            decodes: dict[str, str] | None = None) -> str | None:
        """Register the values of one variable under codelist `ref` (C-code or short name;
        of several, the first that holds the most values); returns the codelist key.
        `decodes` pair values with the data's own decode (for sponsor-extended terms)."""
        refs = [ref] if isinstance(ref, str) else list(ref or ())
        found = [cl for cl in (find(r) for r in refs) if cl is not None]
        if not found or not values:
            return None
        vals = {_text(v) for v in values}
        cl = max(found, key=lambda c: (len(vals & set(c.terms)), -found.index(c)))
        key = oid_token(cl.short)
        if key in self._ct:
            self._ct[key][1].update(vals)
        else:
            self._ct[key] = (cl, set(vals), data_type)
        for value, decode in (decodes or {}).items():
            self._decodes.setdefault(key, {}).setdefault(_text(value), decode)
        return key

    def add_sponsor(self, codelist: Codelist) -> str:
        self.sponsor[codelist.key] = codelist
        return codelist.key

    def codelists(self) -> dict[str, Codelist]:
        out = {key: ct_codelist(cl, vals, self.standards[cl.publishing_set], dt, self._decodes.get(key))
               for key, (cl, vals, dt) in self._ct.items()}
        out.update(self.sponsor)
        return dict(sorted(out.items()))
