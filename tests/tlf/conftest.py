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
    root: Path             # out root
    base: Path             # the build's folder: sdtm/, adam/, tlf/, reports/

    @property
    def tlf(self) -> Path:
        return self.base / "tlf"

    def adam(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.base / "adam" / f"{name.lower()}.parquet")

    def ard(self, outid: str) -> pd.DataFrame:
        return pd.read_parquet(self.tlf / "ard" / f"{outid}.parquet")

    def lineage(self) -> pd.DataFrame:
        return pd.read_parquet(self.tlf / "lineage.parquet")


@pytest.fixture(scope="session")
def sample_tlf(sample_build):
    """{study: SampleTlf} for both studies (CSV form of the newest sample transfer)."""
    return {s: SampleTlf(s, b.root, b.base) for s, b in sample_build.items()}
