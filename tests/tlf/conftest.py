"""Shared, cached runs for the TLF tests: the committed sample transfers mapped to SDTM, ADaM
and every catalogued TLF output once per test session, shared read-only."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest


@dataclass
class SampleTlf:
    study: str
    root: Path             # out root: <root>/<study>/{sdtm,adam,tlf}

    @property
    def tlf(self) -> Path:
        return self.root / self.study / "tlf"

    def adam(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.root / self.study / "adam" / f"{name.lower()}.parquet")

    def ard(self, outid: str) -> pd.DataFrame:
        return pd.read_parquet(self.tlf / "ard" / f"{outid}.parquet")

    def lineage(self) -> pd.DataFrame:
        return pd.read_parquet(self.tlf / "lineage.parquet")


@pytest.fixture(scope="session")
def sample_tlf(tmp_path_factory):
    """{study: SampleTlf} for both studies (CSV form of the newest sample transfer)."""
    from adam.run import run_adam
    from clinpipe.paths import latest_transfer
    from sdtm.run import run_sdtm
    from tlf.run import run_tlf

    tmp = tmp_path_factory.mktemp("sample_tlf")
    out = {}
    for study in ("RS001", "GLOCART"):
        run_sdtm(study, latest_transfer(study) / "csv", tmp, progress=lambda m: None)
        run_adam(study, tmp / study / "sdtm", tmp, progress=lambda m: None)
        run_tlf(study, out_root=tmp, progress=lambda m: None)
        out[study] = SampleTlf(study, tmp)
    return out
