"""ADPP: the cellular-kinetics NCA parameters per subject and method (admiral's ad_adpp.R role).

Each profile — one subject's ADPC records of one parameter (analyte x method) after the
infusion with a result — goes through `adam.nca.nca_profile` once (the NCA is per profile, so
a loop over profiles, not over records). Times are the actual ones (ADPC.AFRLT, days); BLQ
flags travel with the samples so the NCA applies the SAP rule itself (before Tmax 0, after
Tmax dropped, and a BLQ sample stops the Cmax/2 interpolation across it). What cannot be
computed is missing with the NCA's reason in PPREASND: never an error for a thin profile.
The parameters, their codes and units are the data of the spec's PARAMCD rule.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from adam.merged import RuleError
from adam.metadata import DatasetSpec, load_spec
from adam.nca import PARAMETERS, nca_profile

ADSL_VARS = ("SUBJID", "SITEID", "TRT01P", "TRT01PN", "TRT01A", "TRT01AN")
_NCA_OPTIONS = ("cmax_end", "auc_end", "auc_method", "c0_zero", "include_tmax", "min_points", "adj_r2_tolerance")


def _units(kind: pd.Series, conc: pd.Series) -> pd.Series:
    table = {"conc": conc, "time": "day", "auc": "day*" + conc, "rate": "1/day", "n": "", "ratio": ""}
    out = pd.Series("", index=kind.index, dtype=object)
    for k, v in table.items():
        out = out.mask(kind == k, v)
    return out


def compute_nca(profiles: pd.DataFrame, n: int, codes: list[str], options: dict
                ) -> tuple[np.ndarray, np.ndarray]:
    """(values, reasons) of `n` profiles x the NCA `codes`, from `profiles` (one ADPC record
    per sample, numbered by `_PROFILE` 0..n-1). A profile without samples never reaches the
    NCA; a malformed one (the NCA's ValueError) has every parameter missing with its message."""
    values = np.full((n, len(codes)), np.nan)
    reasons = np.full((n, len(codes)), "no post-infusion sample with a result", dtype=object)
    # plain arrays split at the profile boundaries: iterating a pandas groupby costs more than
    # the NCA itself at 10,000 subjects
    pids = profiles["_PROFILE"].to_numpy()
    order = np.argsort(pids, kind="stable")
    pids = pids[order]
    t, c = profiles.AFRLT.to_numpy()[order], profiles.AVAL.to_numpy()[order]
    b = (profiles.BLQFL == "Y").to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]]) if len(pids) else np.array([], dtype=int)
    ends = np.r_[starts[1:], len(pids)]
    for i, j in zip(starts, ends):
        pid = pids[i]
        try:
            res = nca_profile(t[i:j], c[i:j], b[i:j], **options)
        except ValueError as exc:
            reasons[pid, :] = f"profile not analysable: {exc}"
            continue
        for j, code in enumerate(codes):
            p = res[code]
            values[pid, j] = p.value
            reasons[pid, j] = p.reason or ""
    return values, reasons


def build_adpp(adsl: pd.DataFrame, adpc: pd.DataFrame | None, study, spec: DatasetSpec | None = None
               ) -> pd.DataFrame | None:
    """ADPP from ADPC, or None when the study has no ADPC."""
    if adpc is None:
        return None
    spec = spec or load_spec("ADPP", study.study.studyid)
    rule = spec.var("PARAMCD").rule or {}
    table = pd.DataFrame(rule.get("params", []), columns=["nca", "code", "label", "unit"])
    unknown = sorted(set(table.nca) - set(PARAMETERS))
    if unknown:
        raise RuleError(f"ADPP parameter(s) {', '.join(unknown)} are not computed by adam.nca",
                        file=spec.sources[-1], field="PARAMCD", hint=f"use codes of {', '.join(PARAMETERS)}")
    methods = rule.get("methods", {})
    options = {k: v for k, v in (spec.var("AVAL").rule or {}).items() if k in _NCA_OPTIONS}

    # One profile per infused subject x ADPC parameter; its samples: post-infusion with a result
    keys = (adpc[adpc.PCRFTDTM.notna()][["USUBJID", "PARAMCD", "PARAMN", "PARCAT1", "AVALU"]]
            .drop_duplicates(["USUBJID", "PARAMCD"]).sort_values(["USUBJID", "PARAMN"], kind="stable")
            .reset_index(drop=True))
    keys["_PROFILE"] = np.arange(len(keys))
    missing_method = sorted(set(keys.PARCAT1) - set(methods))
    if missing_method:
        raise RuleError(f"ADPC method(s) {', '.join(missing_method)} have no ADPP method letter",
                        file=spec.sources[-1], field="PARAMCD", hint="add them under the rule's methods:")
    used = adpc[(adpc.AFRLT >= 0) & ((adpc.BLQFL == "Y") | adpc.AVAL.notna())]
    samples = used.merge(keys[["USUBJID", "PARAMCD", "_PROFILE"]], on=["USUBJID", "PARAMCD"])
    samples = samples.sort_values(["_PROFILE", "AFRLT"], kind="stable")
    values, reasons = compute_nca(samples, len(keys), list(table.nca), options)

    # profiles x parameters, vectorised
    adpp = keys.loc[keys.index.repeat(len(table))].reset_index(drop=True)
    par = pd.concat([table] * len(keys), ignore_index=True)
    suffix = adpp.PARCAT1.map({k: v["suffix"] for k, v in methods.items()})
    method_label = adpp.PARCAT1.map({k: v["label"] for k, v in methods.items()})
    conc_unit = adpp.AVALU
    adpp = adpp.assign(
        PARAMCD=par.code + suffix,
        NCACD=par.nca, PARCAT2=adpp.PARAMCD,
        AVALU=_units(par.unit, conc_unit),
        PARAMN=adpp.PARAMN * 100 + (par.index % len(table)) + 1,
        AVAL=values.reshape(-1), PPREASND=reasons.reshape(-1))
    adpp["PARAM"] = (par.label + ", " + method_label
                     + np.where(adpp.AVALU != "", " (" + adpp.AVALU + ")", ""))
    adpp.loc[adpp.AVAL.notna(), "PPREASND"] = ""
    adpp = adpp.merge(adsl[["USUBJID", "STUDYID", *ADSL_VARS]], on="USUBJID", how="left")
    adpp = adpp.sort_values(["USUBJID", "PARAMN"], kind="stable")
    adpp["ASEQ"] = adpp.groupby("USUBJID").cumcount() + 1.0
    return adpp.reset_index(drop=True)[spec.names]
