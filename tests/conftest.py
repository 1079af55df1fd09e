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


class _FileProgress:
    """Under pytest-xdist (`make test` runs two workers) the console shows dots, not test
    files: this prints a line per test file as its last test finishes, with its count and time."""

    def __init__(self, config):
        self.config = config
        self.total: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.seconds: dict[str, float] = {}

    @pytest.hookimpl
    def pytest_xdist_node_collection_finished(self, node, ids):
        if not self.total:
            for nodeid in ids:
                path = nodeid.split("::", 1)[0]
                self.total[path] = self.total.get(path, 0) + 1

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report):
        path = report.nodeid.split("::", 1)[0]
        self.seconds[path] = self.seconds.get(path, 0.0) + report.duration
        if report.when != "teardown" or path not in self.total:
            return
        self.done[path] = self.done.get(path, 0) + 1
        if self.done[path] == self.total[path]:
            files = sum(self.done.get(p) == n for p, n in self.total.items())
            terminal = self.config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                # xdist's dots leave the line open: the file's line starts on its own
                terminal.write_line(f"\n  {path}: {self.total[path]} tests, {self.seconds[path]:.1f} s "
                                    f"[{files}/{len(self.total)} files]")


def pytest_configure(config):
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_FileProgress(config), "clinpipe-file-progress")
