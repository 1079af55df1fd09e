"""The eCTD module 5 submission package: layout, Define-XML 2.1 beside the datasets, a manifest
that verifies (with Python and with coreutils' sha256sum), byte-identical rebuilds."""
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from clinpipe.cli import main
from clinpipe.errors import OutputError
from submission.define import validate_define
from submission.package import build_package, layout, verify_package


@pytest.fixture(scope="module")
def build_copy(sample_build, tmp_path_factory):
    """A private copy of the RS001 sample build (the shared one is read-only)."""
    b = sample_build["RS001"]
    root = tmp_path_factory.mktemp("pkg")
    base = root / "RS001" / b.base.name
    for layer in ("sdtm", "adam", "tlf"):
        shutil.copytree(b.base / layer, base / layer)
    return base


@pytest.fixture(scope="module")
def package(build_copy):
    return build_package("RS001", build_copy, progress=lambda m: None)


def test_layout_is_ectd_module_5(package, build_copy):
    folder = package.folder
    assert folder == build_copy / "submission"
    sdtm = folder / "m5/datasets/rs001/tabulations/sdtm"
    adam = folder / "m5/datasets/rs001/analysis/adam/datasets"
    assert {p.name for p in sdtm.glob("*.xpt")} == {p.name for p in (build_copy / "sdtm").glob("*.xpt")}
    assert {p.name for p in adam.glob("*.xpt")} == {p.name for p in (build_copy / "adam").glob("*.xpt")}
    for part in (sdtm, adam):
        assert validate_define(part / "define.xml") == []
        assert (part / "define2-1.xsl").is_file()
    tlf = folder / layout("RS001")["tlf"]
    assert {p.name for p in tlf.glob("*.rtf")} == {p.name for p in (build_copy / "tlf").glob("*.rtf")}
    assert (tlf / "ard").is_dir() and list((tlf / "ard").glob("*.xpt"))
    # what serves the team, not the reviewer, stays out
    assert not list(folder.rglob("*.parquet")) and not list(folder.rglob("*.html"))
    # eCTD: lower-case names, no spaces
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*")]
    assert all(n == n.lower() and " " not in n for n in names)


def test_manifest_verifies_and_names_every_file(package):
    assert verify_package(package.folder) == []
    listed = set(package.files)
    on_disk = {p.relative_to(package.folder).as_posix() for p in package.folder.rglob("*") if p.is_file()}
    assert on_disk - listed == {"manifest.json", "sha256sums.txt"}
    # a reviewer without Python checks the same list with coreutils
    res = subprocess.run(["sha256sum", "--quiet", "-c", "sha256sums.txt"], cwd=package.folder,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_tampered_or_extra_file_is_reported(package, tmp_path):
    copy = tmp_path / "submission"
    shutil.copytree(package.folder, copy)
    xpt = next((copy / "m5/datasets/rs001/tabulations/sdtm").glob("dm.xpt"))
    xpt.write_bytes(xpt.read_bytes()[:-8] + b"\x00" * 8)
    (copy / "stray.txt").write_text("x")
    problems = verify_package(copy)
    assert any("dm.xpt: SHA-256 differs" in p for p in problems)
    assert any("stray.txt: in the package but not in the manifest" in p for p in problems)


def test_rebuild_is_byte_identical(package, build_copy):
    before = {k: v["sha256"] for k, v in package.files.items()}
    manifest = (package.folder / "manifest.json").read_bytes()
    again = build_package("RS001", build_copy, progress=lambda m: None)
    assert {k: v["sha256"] for k, v in again.files.items()} == before
    assert (again.folder / "manifest.json").read_bytes() == manifest


def test_incomplete_build_is_refused_with_a_clear_error(tmp_path, sample_build):
    base = tmp_path / "RS001" / "2025-05-27"
    shutil.copytree(sample_build["RS001"].sdtm, base / "sdtm")
    with pytest.raises(OutputError, match="no complete ADaM build"):
        build_package("RS001", base, progress=lambda m: None)
    assert not (base / "submission").exists()


def test_cli_package_verify_exit_codes(package, build_copy):
    root = build_copy.parent.parent
    ok = CliRunner().invoke(main, ["package", "--study", "RS001", "--transfer", build_copy.name, "--out", str(root),
                                   "--verify"])
    assert ok.exit_code == 0, ok.output
    assert "verifies" in ok.output
    victim = next(package.folder.rglob("t-*.rtf"))
    original = victim.read_bytes()
    victim.write_bytes(original + b" ")
    try:
        bad = CliRunner().invoke(main, ["package", "--study", "RS001", "--transfer", build_copy.name,
                                        "--out", str(root), "--verify"])
        assert bad.exit_code == 1 and victim.name in bad.output
    finally:
        victim.write_bytes(original)
