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
