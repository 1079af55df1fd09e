"""Build the project's ADaM metadata files from the published standards. Run by hand.

    python tools/build_adam_standards.py [--standards ../shared/standards]

Reads the ADaMIG v1.3 variable metadata (ADSL and BDS, with the time-to-event set) and the
CDISC ADaM Controlled Terminology 2025-03-28, and writes into `adam/metadata/`:
- `adamig_1.3_variables.csv`: every ADaMIG v1.3 variable (structure, variable set, name with
  its placeholders such as TRTxxP / AGEGRy / ANLzzFL / *DT, label, type, codelists, core, notes);
- `ct_adam_2025-03-28.csv`: the ADaM CT codelists plus the SDTM CT codelists that ADaMIG
  variables name (AGEU, ...), in the same layout as `sdtm/metadata/ct_sdtm_*.csv`;
- `SOURCE.md`: the source files and their SHA-256.
A fresh clone works without the standards folder. Kept apart from `build_standards.py` (SDTM)
because `adam/` must not depend on the SDTM package.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "adam" / "metadata"
STRUCTURES = {"Subject-Level Analysis Dataset": "ADSL", "Basic Data Structure": "BDS"}
CT_COLUMNS = ["codelist", "codelist_name", "extensible", "codelist_value", "term_code",
              "submission_value", "preferred_term", "synonyms"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def _ct_rows(rows: list[dict[str, str]], wanted) -> list[list[str]]:
    heads = {r["Code"]: r for r in rows if not r["Codelist Code"]}
    out = []
    for r in rows:
        cl = r["Codelist Code"]
        if cl and cl in heads and (wanted is None or cl in wanted):
            h = heads[cl]
            out.append([cl, h["Codelist Name"], h["Codelist Extensible (Yes/No)"],
                        h["CDISC Submission Value"], r["Code"], r["CDISC Submission Value"],
                        r["NCI Preferred Term"], r["CDISC Synonym(s)"]])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--standards", type=Path, default=REPO.parent / "shared" / "standards")
    args = ap.parse_args()
    ig_vars = args.standards / "adamig-1.3" / "Variables.csv"
    adam_ct = args.standards / "ct-2025-03-28" / "ADaM_CT_2025-03-28.csv"
    sdtm_ct = args.standards / "ct-2025-03-28" / "SDTM Terminology 2025-03-28.txt"
    OUT.mkdir(parents=True, exist_ok=True)

    variables = _read(ig_vars)
    named: set[str] = set()
    with (OUT / "adamig_1.3_variables.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["structure", "variable_set", "order", "variable", "label", "type", "codelists",
                    "core", "notes"])
        order: dict[str, int] = {}
        for r in variables:
            structure = STRUCTURES[r["Data Structure Name"]]
            order[structure] = order.get(structure, 0) + 1
            codes = [c.strip() for c in r["CDISC CT Codelist Code(s)"].split(";") if c.strip()]
            named.update(codes)
            w.writerow([structure, r["Variable Set"], order[structure], r["Variable Name"],
                        r["Variable Label"], r["Type"], ";".join(codes), r["Core"],
                        " ".join(r["CDISC Notes"].split())])

    ct = _ct_rows(_read(adam_ct), None)
    have = {row[0] for row in ct}
    ct += _ct_rows(_read(sdtm_ct, "\t"), named - have)
    with (OUT / "ct_adam_2025-03-28.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CT_COLUMNS)
        w.writerows(ct)
    lists = sorted({row[0] for row in ct})
    missing = sorted(named - set(lists))

    (OUT / "SOURCE.md").write_text(
        "# Where these files come from\n\n"
        "Built by `tools/build_adam_standards.py` (run by hand) from the published standards; do not edit by hand.\n\n"
        "| file | source | sha256 of source |\n|---|---|---|\n"
        f"| adamig_1.3_variables.csv | ADaMIG v1.3 `Variables.csv` (CDISC Library export: ADSL, BDS incl. time-to-event) | {sha256(ig_vars)} |\n"
        f"| ct_adam_2025-03-28.csv | CDISC ADaM CT 2025-03-28 `ADaM_CT_2025-03-28.csv` | {sha256(adam_ct)} |\n"
        f"| ct_adam_2025-03-28.csv (SDTM codelists named by ADaMIG variables) | CDISC SDTM CT 2025-03-28, NCI EVS `SDTM Terminology 2025-03-28.txt` | {sha256(sdtm_ct)} |\n\n"
        f"Variables: {len(variables)}. Codelists: {len(lists)}.\n"
        "ADaMIG OCCDS (ADAE) variable metadata is not in this export: OCCDS variables are specified in\n"
        "the dataset specs (`mappings/common/adam/*.yaml`) with their labels from ADaM OCCDS v1.1 text.\n"
        + (f"Codelists named but absent from this CT package: {', '.join(missing)}.\n" if missing else ""),
        encoding="utf-8")
    print(f"wrote {OUT}: {len(variables)} variables, {len(lists)} codelists")


if __name__ == "__main__":
    main()
