"""Build the project's SDTM metadata files from the published standards. Run by hand.

    python tools/build_standards.py [--standards ../shared/standards]

Reads SDTMIG v3.4 variable/dataset metadata and the CDISC SDTM Controlled Terminology package
2025-03-28 (NCI EVS tab-separated file) and writes only what this project uses into
`sdtm/metadata/`, with `SOURCE.md` recording the source files and their SHA-256, so a fresh
clone works without the standards folder. Re-run it when a domain or codelist is added.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "sdtm" / "metadata"

# Domains this project produces (SDTM issue) and the special-purpose / relationship datasets,
# first; then every other SDTMIG 3.4 dataset (the validator reads SDTM written elsewhere: QS, SC,
# ...; and their variables are the SDTM model's qualifiers that any domain of a class may use).
PRODUCED = ("DM", "CO", "SE", "SV", "TA", "TE", "TV", "TI", "TS",
           "EX", "PR", "CM", "AE", "DD", "DS", "MH", "IE", "LB", "VS", "EG", "PC", "PP", "RS", "TU",
           "TR", "FA", "SS", "SUPPQUAL", "RELREC")
DOMAINS = PRODUCED
# Codelists needed beyond those the variables name: TS parameters and their value lists, and
# the other lists mapping specs and trial-design builders draw values from.
EXTRA_CODELISTS = (
    "C66738",   # Trial Summary Parameter Test Code
    "C67152",   # Trial Summary Parameter Test Name
    "C66737",   # Trial Phase Response
    "C66739",   # Trial Type Response
    "C66736",   # Trial Intent Type Response
    "C99076",   # Intervention Model Response
    "C99078",   # Intervention Type Response
    "C66785",   # Control Type Response
    "C66735",   # Trial Blinding Schema Response
    "C66732",   # Sex of Participants Response
    "C66781",   # Age Unit
    "C66729",   # Route of Administration Response
    "C66726",   # Dosage Form
    "C99077",   # Study Type Response
    "C71113",   # Frequency
    # ECOG performance status as an RS clinical classification (RS001 / GLOCART baseline)
    "C101815",  # ECOG Performance Status Clinical Classification Test Code (ECOG1TC)
    "C101816",  # ECOG Performance Status Clinical Classification Test Name (ECOG1TN)
    "C179943",  # ECOG Performance Status ORRES for ECOG101 (ECOG101OR)
    "C179944",  # ECOG Performance Status STRESC for ECOG101 (ECOG101STR)
)

# SDTM model timing variables a domain may carry beyond its SDTMIG 3.4 table (SDTMIG 3.4
# section 2.5: any timing variable of the general observation classes may be added to a
# domain of that class). Each is copied from a published IG row that has the model's generic
# label (domain prefix swapped), and placed after a variable of the target domain, in model
# order. EX: the visit of an administration (PR carries VISITNUM/VISIT/VISITDY in its table);
# MH: study days of start and end (FDA expects --STDY/--ENDY; CE carries them generically).
MODEL_ADDITIONS = {
    "EX": (("PR", ("VISITNUM", "VISIT", "VISITDY"), "EXADJ"),),
    "MH": (("CE", ("CESTDY", "CEENDY"), "MHDY"),),
}


def _with_model_additions(variables: list[dict]) -> list[dict]:
    """The IG rows plus MODEL_ADDITIONS, each domain's Variable Order renumbered 1..n."""
    out = []
    for ds in dict.fromkeys(r["Dataset Name"] for r in variables):
        rows = sorted((r for r in variables if r["Dataset Name"] == ds), key=lambda r: int(r["Variable Order"]))
        for src_ds, names, after in MODEL_ADDITIONS.get(ds, ()):
            src = {r["Variable Name"]: r for r in variables if r["Dataset Name"] == src_ds}
            new = []
            for name in names:
                r = dict(src[name], **{"Dataset Name": ds})
                if name.startswith(src_ds):
                    r["Variable Name"] = ds + name[len(src_ds):]
                new.append(r)
            at = next(i for i, r in enumerate(rows) if r["Variable Name"] == after) + 1
            rows[at:at] = new
        out += [dict(r, **{"Variable Order": str(i)}) for i, r in enumerate(rows, 1)]
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--standards", type=Path, default=REPO.parent / "shared" / "standards")
    args = ap.parse_args()
    ig_vars = args.standards / "sdtmig-3.4" / "Variables.csv"
    ig_sets = args.standards / "sdtmig-3.4" / "Datasets.csv"
    ct_file = args.standards / "ct-2025-03-28" / "SDTM Terminology 2025-03-28.txt"
    OUT.mkdir(parents=True, exist_ok=True)

    global DOMAINS
    with ig_sets.open(encoding="utf-8-sig", newline="") as fh:
        sets = list(csv.DictReader(fh))
    DOMAINS = PRODUCED + tuple(r["Dataset Name"] for r in sets if r["Dataset Name"] not in PRODUCED)
    with (OUT / "sdtmig_3.4_datasets.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["dataset", "label", "class", "structure"])
        for r in sorted(sets, key=lambda r: DOMAINS.index(r["Dataset Name"])):
            w.writerow([r["Dataset Name"], r["Dataset Label"], r["Class"], r["Structure"]])

    with ig_vars.open(encoding="utf-8-sig", newline="") as fh:
        all_rows = list(csv.DictReader(fh))
    variables = [r for r in all_rows if r["Dataset Name"] in DOMAINS]
    sources = {src for adds in MODEL_ADDITIONS.values() for src, _, _ in adds}
    extra = [r for r in all_rows if r["Dataset Name"] in sources - set(DOMAINS)]
    variables = [r for r in _with_model_additions(variables + extra) if r["Dataset Name"] in DOMAINS]
    used = set(EXTRA_CODELISTS)
    with (OUT / "sdtmig_3.4_variables.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["dataset", "order", "variable", "label", "type", "codelists", "role", "core",
                    "value_domain", "value_list"])
        for r in variables:
            codes = [c.strip() for c in r["CDISC CT Codelist Code(s)"].split(";") if c.strip()]
            used.update(codes)
            w.writerow([r["Dataset Name"], r["Variable Order"], r["Variable Name"], r["Variable Label"],
                        r["Type"], ";".join(codes), r["Role"], r["Core"],
                        r["Described Value Domain(s)"] or "", r["Value List"]])

    with ct_file.open(encoding="utf-8-sig", newline="") as fh:
        ct = list(csv.DictReader(fh, delimiter="\t"))
    names = {r["Code"]: r for r in ct if not r["Codelist Code"]}
    missing = sorted(c for c in used if c not in names)
    used -= set(missing)
    with (OUT / "ct_sdtm_2025-03-28.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["codelist", "codelist_name", "extensible", "codelist_value", "term_code",
                    "submission_value", "preferred_term", "synonyms"])
        for r in ct:
            cl = r["Codelist Code"]
            if cl in used:
                head = names[cl]
                w.writerow([cl, head["Codelist Name"], head["Codelist Extensible (Yes/No)"],
                            head["CDISC Submission Value"], r["Code"], r["CDISC Submission Value"],
                            r["NCI Preferred Term"], r["CDISC Synonym(s)"]])

    (OUT / "SOURCE.md").write_text(
        "# Where these files come from\n\n"
        "Built by `tools/build_standards.py` (run by hand) from the published standards; do not edit by hand.\n\n"
        "| file | source | sha256 of source |\n|---|---|---|\n"
        f"| sdtmig_3.4_datasets.csv | SDTMIG v3.4 `Datasets.csv` (CDISC Library export) | {sha256(ig_sets)} |\n"
        f"| sdtmig_3.4_variables.csv | SDTMIG v3.4 `Variables.csv` (CDISC Library export) | {sha256(ig_vars)} |\n"
        f"| ct_sdtm_2025-03-28.csv | CDISC SDTM Controlled Terminology 2025-03-28, NCI EVS `SDTM Terminology 2025-03-28.txt` | {sha256(ct_file)} |\n\n"
        f"Domains: {', '.join(DOMAINS)}.\n\n"
        "SDTM model timing variables added to a domain's IG table (MODEL_ADDITIONS): "
        + "; ".join(f"{ds}: {', '.join(n if not n.startswith(src) else ds + n[len(src):] for n in names)} "
                    f"(as in {src})" for ds, adds in MODEL_ADDITIONS.items() for src, names, _ in adds)
        + ".\n\n"
        f"Codelists: {len(used)} (those the domains' variables name, plus TS parameter and value lists).\n"
        + (f"Codelists named but absent from this CT package: {', '.join(missing)}.\n" if missing else ""),
        encoding="utf-8")
    print(f"wrote {OUT}: {len(sets)} datasets, {len(variables)} variables, {len(used)} codelists")


if __name__ == "__main__":
    main()
