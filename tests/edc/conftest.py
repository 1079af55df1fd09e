"""Shared fixtures: the test study's config, its simulated records as frames, and one
transfer folder per format written from them (session-scoped: tests copy before damaging)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from edc_testdata import small_study, write_config

from edc.export import build_frames
from edc.transfer import MANIFEST_NAME, write_transfer

TRANSFER = "2025-03-31"


@pytest.fixture(scope="session")
def mappings_root(tmp_path_factory):
    return tmp_path_factory.mktemp("mappings")


@pytest.fixture(scope="session")
def config(mappings_root):
    return write_config(mappings_root)


@pytest.fixture(scope="session")
def study(config):
    return config[0]


@pytest.fixture(scope="session")
def forms(config):
    return config[1]


@pytest.fixture(scope="session")
def sim():
    return small_study()


@pytest.fixture(scope="session")
def frames(sim, forms, study):
    return build_frames(sim, forms, study, seed=11)


@pytest.fixture(scope="session")
def transfers(tmp_path_factory, frames, forms, study, sim):
    """format -> transfer folder (with transfer.json), written once per session."""
    root = tmp_path_factory.mktemp("transfers")
    out = {}
    for fmt in ("csv", "odm", "xpt"):
        folder = root / fmt / TRANSFER
        write_transfer(frames, forms, study, folder, format=fmt, transfer_date=sim.transfer_date)
        out[fmt] = folder
    return out


@pytest.fixture
def copy_transfer(tmp_path, transfers):
    """A writable copy of a transfer folder, by default without its manifest."""
    def make(fmt: str, manifest: bool = False) -> Path:
        dst = tmp_path / fmt / TRANSFER
        shutil.copytree(transfers[fmt], dst)
        if not manifest:
            (dst / MANIFEST_NAME).unlink()
        return dst
    return make
