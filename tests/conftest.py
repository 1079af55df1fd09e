"""Shared test helpers. Tests use only the repository (never ../shared), like a fresh clone."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clinpipe.paths import REPO_ROOT


@pytest.fixture
def mappings_copy(tmp_path) -> Path:
    """A writable copy of mappings/ to break on purpose."""
    dst = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings", dst)
    return dst


class SampleBuild:
    """One study's committed sample transfer (CSV form) built raw -> SDTM -> ADaM -> TLF once
    per test session; shared read-only by every test folder that needs built outputs."""

    def __init__(self, study: str, root: Path, sdtm_run, adam_run, tlf_run):
        self.study, self.root = study, root
        self.sdtm_run, self.adam_run, self.tlf_run = sdtm_run, adam_run, tlf_run

    @property
    def base(self) -> Path:
        """The folder holding this build's sdtm/, adam/, tlf/ and reports/."""
        return self.sdtm_run.folder.parent

    @property
    def sdtm(self) -> Path:
        return self.base / "sdtm"

    @property
    def adam(self) -> Path:
        return self.base / "adam"

    @property
    def tlf(self) -> Path:
        return self.base / "tlf"


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory) -> dict[str, SampleBuild]:
    """{study: SampleBuild} for RS001 and GLOCART."""
    from adam.run import run_adam
    from clinpipe.paths import latest_transfer
    from sdtm.run import run_sdtm
    from tlf.run import run_tlf

    root = tmp_path_factory.mktemp("sample_build")
    quiet = lambda m: None
    builds = {}
    for study in ("RS001", "GLOCART"):
        sdtm_run = run_sdtm(study, latest_transfer(study) / "csv", root, progress=quiet)
        adam_run = run_adam(study, sdtm_run.folder, root, progress=quiet)
        tlf_run = run_tlf(study, adam_run.folder, out_root=root, progress=quiet)
        builds[study] = SampleBuild(study, root, sdtm_run, adam_run, tlf_run)
    return builds
