"""ADaM conformance: pandera schemas built from the dataset specs, and ADaM rules, reported in
the same finding shape as SDTM conformance (`clinpipe.findings`).

Schemas (`ADS-*`), from the spec of each dataset — never hand-written:
- ADS-VAR: every spec variable present, nothing else; ADS-TYPE: Char text, Num numbers/dates;
- ADS-KEY: key variables are never empty (ADaMIG's Req means "included", which ADS-VAR checks;
  ARM or TRT01P are rightly empty for a screen failure, a key never is);
- ADS-CT: values of a variable with an ADaM/SDTM CT codelist are terms of it (extensible: WARNING);
- ADS-FLAG: *FL variables are Y, N or empty (ADSL population flags Y/N).
Rules (`AD0nn`), each mirroring an ADaMIG 1.3 requirement:
- AD001 ADSL has one record per subject (ADaMIG §3.1); AD002 every subject of an ADaM dataset is
  in ADSL; AD003 the dataset keys are unique; AD004 PARAMCD at most 8 characters, starting with a
  letter (ADaMIG §3.3.4); AD005 PARAMCD and PARAM one-to-one; AD006 at most one baseline record
  (ABLFL = Y) per subject, parameter and BASETYPE; AD007 no analysis date after the data cut-off;
  time-to-event (ADaMIG §3.3.8): AD008 CNSR is 0 (event, with EVNTDESC) or a positive integer
  (censored, with CNSDTDSC), AD009 ADT on or after STARTDT, AD010 AVAL = ADT - STARTDT + 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from adam.metadata import DatasetSpec, codelists
from clinpipe.findings import findings_frame, make_findings

KEYLESS_SEQ = "ASEQ"


def _failures_to_findings(exc: pa.errors.SchemaErrors, df: pd.DataFrame, spec: DatasetSpec,
                          rules: dict[str, tuple[str, str, str]]) -> pd.DataFrame:
    cases = exc.failure_cases
    out = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        if check in ("column_in_dataframe", "column_in_schema"):
            for name in group.failure_case.astype(str):
                what = "is missing" if check == "column_in_dataframe" else "is not in the dataset spec"
                out.append(findings_frame([{"RULE": "ADS-VAR", "SEVERITY": "ERROR", "DATASET": spec.name,
                                            "USUBJID": "", "SEQ": np.nan, "VARIABLE": name, "VALUE": "",
                                            "MESSAGE": f"variable {name} {what}"}]))
            continue
        rule, severity, message = rules.get(f"{column}:{check}", ("ADS-TYPE", "ERROR", f"failed {check}"))
        idx = group["index"].dropna()
        records = df.loc[df.index.intersection(idx.astype(int))] if len(idx) else df.head(0)
        if records.empty:
            out.append(findings_frame([{"RULE": rule, "SEVERITY": severity, "DATASET": spec.name, "USUBJID": "",
                                        "SEQ": np.nan, "VARIABLE": str(column), "VALUE": "",
                                        "MESSAGE": message}]))
        else:
            out.append(_findings(rule, severity, spec.name, records, str(column), message))
    return pd.concat(out, ignore_index=True) if out else findings_frame()


def _findings(rule, severity, dataset, records, variable, message) -> pd.DataFrame:
    f = make_findings(rule, severity, dataset, records.rename(columns={KEYLESS_SEQ: f"{dataset}SEQ"}),
                      variable, message)
    return f


def schema(spec: DatasetSpec) -> tuple[pa.DataFrameSchema, dict[str, tuple[str, str, str]]]:
    """The pandera schema of a dataset spec, and per (column, check) the rule it reports as."""
    cols, rules = {}, {}
    lists = codelists()
    for var in spec.variables:
        checks = []
        if var.type == "Char":
            if var.name in spec.keys:
                checks.append(pa.Check(lambda s: s != "", name="key"))
                rules[f"{var.name}:key"] = ("ADS-KEY", "ERROR", f"{var.name} is a key variable of {spec.name} and empty")
            if var.name.endswith("FL"):
                checks.append(pa.Check(lambda s: s.isin(["Y", "N", ""]), name="flag"))
                rules[f"{var.name}:flag"] = ("ADS-FLAG", "ERROR", f"{var.name} is a flag: Y, N or empty")
            for code in var.codelists:
                cl = lists.get(code)
                if cl is None:
                    continue
                name = f"ct_{code}"
                checks.append(pa.Check(lambda s, t=cl.terms: s.isin(t) | (s == ""), name=name))
                rules[f"{var.name}:{name}"] = ("ADS-CT", "WARNING" if cl.extensible else "ERROR",
                                                f"{var.name} value not in CT codelist {cl.short} ({code})")
            cols[var.name] = pa.Column(object, checks=checks, nullable=False, required=True)
        elif var.kind in ("date", "datetime"):
            cols[var.name] = pa.Column("datetime64[ns]", nullable=var.name not in spec.keys, required=True)
        else:
            cols[var.name] = pa.Column(float, nullable=var.name not in spec.keys, required=True)
    return pa.DataFrameSchema(cols, strict=True, ordered=False, name=spec.name), rules


def validate_dataset(df: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    sch, rules = schema(spec)
    try:
        sch.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return _failures_to_findings(exc, df, spec, rules)
    return findings_frame()


def _rules(datasets: dict[str, pd.DataFrame], specs: dict[str, DatasetSpec], cutoff) -> list[pd.DataFrame]:
    out = []
    adsl = datasets.get("ADSL")
    if adsl is not None:
        dup = adsl[adsl.USUBJID.duplicated(keep=False)]
        out.append(_findings("AD001", "ERROR", "ADSL", dup, "USUBJID", "ADSL has more than one record for the subject"))
    for name, df in datasets.items():
        spec = specs[name]
        if adsl is not None and name != "ADSL":
            orphan = df[~df.USUBJID.isin(adsl.USUBJID)]
            out.append(_findings("AD002", "ERROR", name, orphan, "USUBJID", "subject not in ADSL"))
        keys = [k for k in spec.keys if k in df.columns]
        dup = df[df.duplicated(keys, keep=False)] if keys else df.head(0)
        out.append(_findings("AD003", "ERROR", name, dup, keys[-1] if keys else "",
                             f"more than one record with the same keys ({', '.join(keys)})"))
        if "PARAMCD" in df.columns:
            bad = df[~df.PARAMCD.str.fullmatch(r"[A-Z][A-Z0-9_]{0,7}")]
            out.append(_findings("AD004", "ERROR", name, bad, "PARAMCD",
                                 "PARAMCD must be 1-8 characters, letters/digits/underscore, starting with a letter"))
            if "PARAM" in df.columns:
                pairs = df[["PARAMCD", "PARAM"]].drop_duplicates()
                clash = pairs[pairs.PARAMCD.duplicated(keep=False) | pairs.PARAM.duplicated(keep=False)]
                rows = df[df.PARAMCD.isin(clash.PARAMCD) | df.PARAM.isin(clash.PARAM)].drop_duplicates(["PARAMCD", "PARAM"])
                out.append(_findings("AD005", "ERROR", name, rows, "PARAMCD", "PARAMCD and PARAM are not one-to-one"))
        if "ABLFL" in df.columns and "PARAMCD" in df.columns:
            by = ["USUBJID", "PARAMCD"] + (["BASETYPE"] if "BASETYPE" in df.columns else [])
            base = df[df.ABLFL == "Y"]
            many = base[base.duplicated(by, keep=False)]
            out.append(_findings("AD006", "ERROR", name, many, "ABLFL",
                                 "more than one baseline record for the subject and parameter"))
        if {"CNSR", "ADT", "STARTDT"} <= set(df.columns):
            out += _tte_rules(name, df)
        if cutoff is not None:
            for var in (v for v in spec.variables if v.kind == "date" and v.name not in ("DCUTDT",)):
                late = df[df[var.name] > pd.Timestamp(cutoff)] if var.name in df.columns else df.head(0)
                out.append(_findings("AD007", "ERROR", name, late, var.name,
                                     f"{var.name} is after the data cut-off {cutoff}"))
    return out


def _tte_rules(name: str, df: pd.DataFrame) -> list[pd.DataFrame]:
    cnsr = df.CNSR
    bad = ~((cnsr == 0) | ((cnsr > 0) & (cnsr == cnsr.round()))) | cnsr.isna()
    if "EVNTDESC" in df.columns:
        bad |= (cnsr == 0) & (df.EVNTDESC == "")
    if "CNSDTDSC" in df.columns:
        bad |= (cnsr > 0) & (df.CNSDTDSC == "")
    early = df[df.ADT < df.STARTDT]
    aval = ((df.ADT - df.STARTDT).dt.days + 1).astype("float64")
    wrong = df[(df.AVAL != aval) & aval.notna()] if "AVAL" in df.columns else df.head(0)
    return [_findings("AD008", "ERROR", name, df[bad], "CNSR",
                      "CNSR must be 0 for an event (with EVNTDESC) or a positive integer for a censoring (with CNSDTDSC)"),
            _findings("AD009", "ERROR", name, early, "ADT", "ADT is before STARTDT"),
            _findings("AD010", "ERROR", name, wrong, "AVAL", "AVAL is not ADT - STARTDT + 1 (days)")]


@dataclass
class AdamValidation:
    findings: pd.DataFrame

    def open(self, severity: str = "ERROR") -> pd.DataFrame:
        return self.findings[self.findings.SEVERITY == severity]

    def summary(self) -> pd.DataFrame:
        f = self.findings
        if f.empty:
            return pd.DataFrame(columns=["RULE", "SEVERITY", "DATASET", "COUNT"])
        return f.groupby(["RULE", "SEVERITY", "DATASET"], as_index=False).size().rename(columns={"size": "COUNT"})


def validate_adam(datasets: dict[str, pd.DataFrame], specs: dict[str, DatasetSpec], cutoff=None) -> AdamValidation:
    parts = [validate_dataset(df, specs[name]) for name, df in datasets.items()]
    parts += _rules(datasets, specs, cutoff)
    parts = [p for p in parts if len(p)]
    return AdamValidation(pd.concat(parts, ignore_index=True) if parts else findings_frame())
