"""Build the project's CTCAE v5.0 laboratory grading criteria from the published metadata. Run by hand.

    python tools/build_ctcae.py [--standards ../shared/standards]

Reads the CTCAE v5.0 (NCI, 27 Nov 2017) laboratory criteria as machine-readable metadata from
pharmaverse/admiral (Apache-2.0; `ctcae-5.0/ncictcaev5.json` for SI units and
`ncictcaev5_uscv.json` for US conventional units, 40 terms each). Their GRADE_n_CODE fields are
R `case_when` expressions; this tool reads them as criteria (it does not evaluate R) and writes
into `adam/metadata/`:
- `ctcae_v5_lab.csv`: the criteria in a small declarative form, one row per clause. The rows of
  one term (per unit system) are rules tried in `rule` order; the first rule whose clauses all
  hold gives the grade (`grade` empty: no grade, the criterion cannot be applied); when none
  holds and AVAL is present the grade is "0". A clause compares `variable` (AVAL, PCHG) with
  `comparison` (<, <=, >, >=) against `reference`: `value` (the number itself, in `unit`),
  `LLN`/`ULN`/`BASE` (number x the range limit or baseline) or `ULN+` (ULN plus number, in
  `unit`); comparison `missing` tests that `variable` is missing. `baseline` restricts a rule to a
  normal (BNRIND not HIGH, as admiral) or abnormal (BNRIND HIGH) baseline. `unit` empty: the
  term is graded on multiples of its range or baseline, in any unit.
- `ctcae_lab_terms.csv`: the project's SDTM LB tests (LBTESTCD) graded by CTCAE, with the term
  for each direction (L: ATOXDSCL/ATOXGRL, H: ATOXDSCH/ATOXGRH) and the study's standard unit
  (from `mappings/common/lab_units.yaml`, checked against the criteria's unit).
- `CTCAE_SOURCE.md`: the source files and their SHA-256.
`!is.na(X) &` in the source is not kept: a comparison with a missing value never holds here, as
in R's `case_when`. Kept apart from `build_adam_standards.py`, which owns `SOURCE.md`.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "adam" / "metadata"
LAB_UNITS = REPO / "mappings" / "common" / "lab_units.yaml"
SOURCES = {"SI": "ncictcaev5.json", "CV": "ncictcaev5_uscv.json"}
COLUMNS = ["system", "term", "direction", "unit", "rule", "grade", "baseline", "clause", "variable",
           "comparison", "reference", "number", "grade_text", "comment"]

# The project's LB tests (mappings/common/forms.yaml LBTEST, lab_units.yaml) that CTCAE v5.0
# grades from the numeric result. Not graded: CRP, FERRITIN, INTLK6 (no CTCAE v5.0 laboratory
# term), BLASTCE and MRD (disease measures, not adverse-event terms).
LB_TERMS = [
    ("WBC", "L", "White blood cell decreased"),
    ("WBC", "H", "Leukocytosis"),
    ("NEUT", "L", "Neutrophil count decreased"),
    ("LYM", "L", "Lymphocyte count decreased"),
    ("LYM", "H", "Lymphocyte count increased"),
    ("PLAT", "L", "Platelet count decreased"),
    ("HGB", "L", "Anemia"),
    ("HGB", "H", "Hemoglobin increased"),
    ("ALT", "H", "Alanine aminotransferase increased"),
    ("AST", "H", "Aspartate aminotransferase increased"),
    ("BILI", "H", "Blood bilirubin increased"),
    ("CREAT", "H", "Creatinine increased"),
    ("ALB", "L", "Hypoalbuminemia"),
    ("LDH", "H", "Blood lactate dehydrogenase increased"),
    ("FIBRINO", "L", "Fibrinogen decreased"),
]

NUM = r"-?\d+(?:\.\d+)?"
SIG = r"signif\(\s*(.+?)\s*,\s*signif_dig\s*\)"
CMP = re.compile(rf"^{SIG}\s*(<=|>=|<|>)\s*(.+)$")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside parentheses."""
    parts, depth, cur, i = [], 0, "", 0
    while i < len(text):
        c = text[i]
        depth += (c == "(") - (c == ")")
        if depth == 0 and text.startswith(sep, i):
            parts.append(cur)
            cur, i = "", i + len(sep)
            continue
        cur += c
        i += 1
    return [p.strip() for p in parts + [cur] if p.strip()]


def _reference(rhs: str) -> tuple[str, str]:
    """Right-hand side of a comparison as (reference, number)."""
    rhs = rhs.strip()
    if re.fullmatch(NUM, rhs):
        return "value", rhs
    m = re.fullmatch(SIG, rhs)
    if not m:
        raise ValueError(f"unread comparison side: {rhs!r}")
    inner = m.group(1).replace(" ", "")
    limits = {"ANRLO": "LLN", "ANRHI": "ULN", "BASE": "BASE"}
    if re.fullmatch(NUM, inner):
        return "value", inner
    if inner in limits:
        return limits[inner], "1"
    if (m2 := re.fullmatch(rf"({NUM})\*(ANRLO|ANRHI|BASE)", inner)):
        return limits[m2.group(2)], m2.group(1)
    if (m2 := re.fullmatch(rf"ANRHI\+({NUM})", inner)):
        return "ULN+", m2.group(1)
    raise ValueError(f"unread comparison side: {rhs!r}")


def _clauses(cond: str) -> tuple[str, list[tuple[str, str, str, str]]]:
    """A condition as (baseline, [(variable, comparison, reference, number)])."""
    baseline, out = "", []
    for atom in _split_top(cond, "&"):
        atom = atom.strip()
        if atom == "!(BNRIND %in% high_indicator)":
            baseline = "normal"
        elif atom == "BNRIND %in% high_indicator":
            baseline = "abnormal"
        elif re.fullmatch(r"!is\.na\((\w+)\)", atom):
            continue  # a comparison with a missing value does not hold anyway
        elif (m := re.fullmatch(r"is\.na\((\w+)\)", atom)):
            out.append((m.group(1), "missing", "", ""))
        elif (m := CMP.match(atom)):
            var = m.group(1).replace(" ", "")
            if var not in ("AVAL", "PCHG"):
                raise ValueError(f"unread variable {var!r} in {atom!r}")
            out.append((var, m.group(2), *_reference(m.group(3))))
        else:
            raise ValueError(f"unread condition: {atom!r}")
    return baseline, out


def _rules(code: str) -> list[tuple[str, str]]:
    """`cond ~ "n", cond ~ NA_character_` as [(cond, grade)], grade '' for NA."""
    out = []
    for part in _split_top(code, ","):
        cond, _, res = part.rpartition("~")
        res = res.strip()
        grade = "" if res == "NA_character_" else res.strip('"')
        if grade not in ("", "1", "2", "3", "4"):
            raise ValueError(f"unread outcome: {part!r}")
        for alt in _split_top(cond.strip(), "|"):  # `a | b ~ NA`: one rule per alternative
            if "|" in alt or (grade and alt != cond.strip()):
                raise ValueError(f"unread alternative: {part!r}")
            out.append((alt, grade))
    return out


def _term_rows(system: str, rec: dict) -> list[list[str]]:
    rows: list[list[str]] = []
    rule = 0
    guarded_base = False
    unit = (rec.get("UNIT_CHECK") or "").strip()
    for key in ("GRADE_NA_CODE", "GRADE_4_CODE", "GRADE_3_CODE", "GRADE_2_CODE", "GRADE_1_CODE"):
        if not rec.get(key):
            continue
        for cond, grade in _rules(rec[key]):
            baseline, clauses = _clauses(cond)
            if baseline == "abnormal" and not guarded_base:
                # Project guard (not in admiral): the abnormal-baseline criteria are multiples of
                # BASE; with BNRIND HIGH but BASE missing, no grade rather than "0".
                rule += 1
                guarded_base = True
                rows.append([system, rec["TERM"], rec["DIRECTION"], unit, rule, "", "abnormal", 1,
                             "BASE", "missing", "", "", "",
                             "project guard: abnormal-baseline criteria need BASE"])
            rule += 1
            text = " ".join(str(rec.get(f"GRADE_{grade}", "")).split()) if grade else ""
            comment = "" if grade else f"no grade: {clauses[0][0]} needed"
            if grade and rec.get("COMMENT"):
                comment = " ".join(rec["COMMENT"].split())
            for n, (var, cmp_, ref, num) in enumerate(clauses, 1):
                rows.append([system, rec["TERM"], rec["DIRECTION"], unit, rule, grade, baseline, n,
                             var, cmp_, ref, num, text, comment])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--standards", type=Path, default=REPO.parent / "shared" / "standards")
    args = ap.parse_args()
    src = {s: args.standards / "ctcae-5.0" / f for s, f in SOURCES.items()}
    OUT.mkdir(parents=True, exist_ok=True)

    rows: list[list[str]] = []
    terms: dict[str, dict[str, dict]] = {}
    for system, path in src.items():
        records = json.loads(path.read_text(encoding="utf-8"))
        terms[system] = {r["TERM"]: r for r in records}
        for rec in records:
            rows.extend(_term_rows(system, rec))
    with (OUT / "ctcae_v5_lab.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)

    standard = {k: v["standard"] for k, v in yaml.safe_load(LAB_UNITS.read_text())["tests"].items()}
    with (OUT / "ctcae_lab_terms.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["LBTESTCD", "direction", "term", "unit"])
        for testcd, direction, term in LB_TERMS:
            rec = terms["SI"].get(term)
            if rec is None or rec["DIRECTION"] != direction:
                raise SystemExit(f"{testcd}: no CTCAE v5.0 term {term!r} in direction {direction}")
            need = (rec.get("UNIT_CHECK") or "").strip()
            unit = standard[testcd]
            if need and need.upper() != unit.upper():
                raise SystemExit(f"{testcd}: standard unit {unit} is not the criteria's unit {need}")
            w.writerow([testcd, direction, term, unit])

    (OUT / "CTCAE_SOURCE.md").write_text(
        "# Where the CTCAE files come from\n\n"
        "Built by `tools/build_ctcae.py` (run by hand); do not edit by hand.\n\n"
        "| file | source | sha256 of source |\n|---|---|---|\n"
        f"| ctcae_v5_lab.csv (system SI) | NCI CTCAE v5.0 (27 Nov 2017) laboratory criteria, SI units, as metadata in pharmaverse/admiral (Apache-2.0) `{SOURCES['SI']}` | {sha256(src['SI'])} |\n"
        f"| ctcae_v5_lab.csv (system CV) | the same, US conventional units, `{SOURCES['CV']}` | {sha256(src['CV'])} |\n"
        f"| ctcae_lab_terms.csv | project choice; units from `mappings/common/lab_units.yaml` | {sha256(LAB_UNITS)} |\n\n"
        f"Terms: {len(terms['SI'])} per unit system. Criteria rows: {len(rows)}. "
        f"LB tests graded: {len({t for t, _, _ in LB_TERMS})}.\n"
        "Rules are read from the source's R `case_when` expressions (GRADE_NA_CODE, GRADE_4_CODE ...\n"
        "GRADE_1_CODE, in that order), including admiral's worst-case readings (COMMENT column), e.g.\n"
        "INR \"on anticoagulation\", hyponatremia/hypokalemia \"symptomatic\". One project guard is added:\n"
        "an abnormal baseline (BNRIND HIGH) without BASE gives no grade instead of \"0\".\n",
        encoding="utf-8")
    print(f"wrote {OUT}: {len(rows)} criteria rows, {len(LB_TERMS)} LB test terms")


if __name__ == "__main__":
    main()
