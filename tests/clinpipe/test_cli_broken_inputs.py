"""Every command on broken input: a clear message and a usage/data exit code, never a
traceback (issue 13, item 3). Each case is something a user can type: a folder that is
missing, empty, a file, or holds files that are not what the command reads; an unknown or
path-like study; an impossible date; a malformed manifest."""

import json

import pytest
from click.testing import CliRunner

from clinpipe.cli import main


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    (root / "empty").mkdir()
    (root / "a-file").write_text("not a folder\n")
    garbage = root / "garbage"  # a "transfer" whose CSVs are not EDC exports
    garbage.mkdir()
    (garbage / "ae.csv").write_bytes(b"\x00\xff\xfe garbage;;;\n\x01\x02")
    (garbage / "dm.csv").write_text("A,B\n1,2,3,4\n")
    unknown_form = root / "unknown-form"
    unknown_form.mkdir()
    (unknown_form / "xyz.csv").write_text("SUBJECT,RECORDID\n001,1\n")
    sdtm = root / "bad-sdtm"  # SDTM files that are not what their names say
    sdtm.mkdir()
    (sdtm / "dm.parquet").write_bytes(b"PAR1 not really")
    (sdtm / "dm.xpt").write_bytes(b"HEADER RECORD******* but no more")
    (sdtm / "manifest.json").write_text("{not json")
    adam = root / "bad-adam"
    adam.mkdir()
    (adam / "manifest.json").write_text(json.dumps({"datasets": {"ADSL": {"rows": "many"}}}))
    (adam / "adsl.parquet").write_text("not parquet")
    not_json = root / "adam-not-json"
    not_json.mkdir()
    (not_json / "manifest.json").write_text("{bad")
    (root / "out").mkdir()
    return root


CASES = {
    "read: missing folder": (["read", "--transfer", "{root}/missing"], "transfer folder not found"),
    "read: empty folder": (["read", "--transfer", "{root}/empty"], "transfer folder is empty"),
    "read: a file": (["read", "--transfer", "{root}/a-file"], "unknown export format"),
    "read: garbage CSV": (
        ["read", "--study", "RS001", "--transfer", "{root}/garbage"],
        "ae.csv, record line 1: not valid utf-8",
    ),
    "read: unknown form": (
        ["read", "--study", "RS001", "--transfer", "{root}/unknown-form"],
        "form XYZ (from the file name) is not defined",
    ),
    "read: unknown encoding": (
        ["read", "--study", "RS001", "--transfer", "{root}/garbage", "--encoding", "no-such-codec"],
        "unknown encoding 'no-such-codec'",
    ),
    "sdtm: unknown study": (
        ["sdtm", "--study", "NOPE", "--out", "{root}/out"],
        "unknown study 'NOPE'; configured studies: GLOCART, RS001",
    ),
    "sdtm: study as a path": (
        ["sdtm", "--study", "../mappings/RS001", "--out", "{root}/out"],
        "unknown study '../mappings/RS001'",
    ),
    "sdtm: empty transfer": (
        ["sdtm", "--study", "RS001", "--transfer", "{root}/empty", "--out", "{root}/out"],
        "transfer folder is empty",
    ),
    "sdtm: garbage transfer": (
        ["sdtm", "--study", "RS001", "--transfer", "{root}/garbage", "--out", "{root}/out"],
        "ae.csv, record line 1: not valid utf-8",
    ),
    "sdtm: unknown transfer name": (
        ["sdtm", "--study", "RS001", "--transfer", "1999-01-01", "--out", "{root}/out"],
        "no transfer '1999-01-01'",
    ),
    "validate: missing folder": (
        ["validate", "--study", "RS001", "--sdtm", "{root}/missing", "--out", "{root}/out"],
        "SDTM folder not found",
    ),
    "validate: empty folder": (
        ["validate", "--study", "RS001", "--sdtm", "{root}/empty", "--out", "{root}/out"],
        "no .xpt or .parquet datasets",
    ),
    "validate: corrupt files": (
        ["validate", "--study", "RS001", "--sdtm", "{root}/bad-sdtm", "--out", "{root}/out"],
        "manifest.json: not a readable manifest",
    ),
    "validate: nothing built": (
        ["validate", "--study", "RS001", "--out", "{root}/out"],
        "no SDTM built for RS001 yet",
    ),
    "adam: empty SDTM folder": (
        ["adam", "--study", "RS001", "--sdtm", "{root}/empty", "--out", "{root}/out"],
        "the folder has no DM dataset",
    ),
    "adam: corrupt SDTM": (
        ["adam", "--study", "RS001", "--sdtm", "{root}/bad-sdtm", "--out", "{root}/out"],
        "no data cut-off",
    ),
    "adam: impossible cut-off": (
        ["adam", "--study", "RS001", "--cutoff", "2025-13-45", "--out", "{root}/out"],
        "'2025-13-45' does not match the format",
    ),
    "adam: nothing built": (
        ["adam", "--study", "RS001", "--out", "{root}/out"],
        "no SDTM built for RS001 yet",
    ),
    "tlf: empty ADaM folder": (
        ["tlf", "--study", "RS001", "--adam", "{root}/empty", "--out", "{root}/out"],
        "no ADaM build here (manifest.json missing)",
    ),
    "tlf: corrupt ADaM": (
        ["tlf", "--study", "RS001", "--adam", "{root}/bad-adam", "--out", "{root}/out"],
        "manifest names no transfer_date",
    ),
    "tlf: ADaM manifest not JSON": (
        ["tlf", "--study", "RS001", "--adam", "{root}/adam-not-json", "--out", "{root}/out"],
        "manifest.json: not a readable manifest",
    ),
    "tlf: unknown output": (
        ["tlf", "--study", "RS001", "--output", "t-99", "--out", "{root}/out"],
        "no ADAM built for RS001 yet",
    ),
    "trace: nothing built": (
        ["trace", "--study", "RS001", "--output", "t-14-2-5", "--row", "1", "--out", "{root}/out"],
        "no TLF built for RS001 yet",
    ),
    "changes: nothing built": (
        ["changes", "--study", "RS001", "--out", "{root}/out"],
        "no TLF built for RS001 yet",
    ),
    "package: nothing built": (
        ["package", "--study", "RS001", "--out", "{root}/out"],
        "no TLF built for RS001 yet",
    ),
    "package --verify: nothing built": (
        ["package", "--study", "RS001", "--verify", "--out", "{root}/out"],
        "no TLF built for RS001 yet",
    ),
    "run: garbage transfer": (
        ["run", "--study", "RS001", "--transfer", "{root}/garbage", "--out", "{root}/out"],
        "ae.csv, record line 1: not valid utf-8",
    ),
    "simulate: no subjects": (
        ["simulate", "--study", "RS001", "--subjects", "0", "--out", "{root}/sim0"],
        "--subjects must be at least 1",
    ),
    "simulate: negative subjects": (
        ["simulate", "--study", "RS001", "--subjects", "-3", "--out", "{root}/sim1"],
        "--subjects must be at least 1",
    ),
    "simulate: out is a file": (
        ["simulate", "--study", "RS001", "--subjects", "2", "--out", "{root}/a-file"],
        "output folder is not empty",
    ),
    "demo: unknown study": (
        ["demo", "--study", "NOPE", "--out", "{root}/out"],
        "unknown study 'NOPE'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_input_gets_a_message_not_a_traceback(broken, case):
    args, expected = CASES[case]
    args = [a.format(root=broken) for a in args]
    res = CliRunner().invoke(main, args)
    # an exception escaping the command is what a user would see as a traceback
    escaped = res.exception if not isinstance(res.exception, SystemExit) else None
    assert escaped is None, f"{case}: {type(escaped).__name__}: {escaped}"
    assert res.exit_code in (1, 2), f"{case}: exit {res.exit_code}\n{res.output}"
    assert "Traceback" not in res.output
    assert expected in res.output, f"{case}: {res.output}"
