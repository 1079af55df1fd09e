"""The Dagster web UI works: the webserver serves both studies' asset groups and checks, and the
global asset lineage renders in headless Chromium (Debian's package), saved as screenshots.

Chromium is driven over the DevTools protocol so the test waits for the graph itself rather
than a fixed time; the screenshots are also copied to out/screenshots/ for people to look at.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from clinpipe.paths import REPO_ROOT
from pipelines.definitions import STUDIES

CHROMIUM = "/usr/bin/chromium"
LAYERS = ("raw", "sdtm", "adam", "tlf")
WIDTH, HEIGHT = 1600, 1000
SCREENSHOTS = REPO_ROOT / "out" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(proc: subprocess.Popen) -> None:
    """The webserver starts a code server and Chromium its helpers: end the whole group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


class Webserver:
    def __init__(self, url: str, log: Path):
        self.url, self.log = url, log

    def graphql(self, query: str) -> dict:
        req = urllib.request.Request(f"{self.url}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as res:
            body = json.load(res)
        assert "errors" not in body, body["errors"]
        return body["data"]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    log = home / "webserver.log"
    exe = Path(sys.executable).with_name("dagster-webserver")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    # cwd = DAGSTER_HOME: dagster.yaml's relative storage paths land in tmp, not the repo's
    with log.open("w") as out:
        proc = subprocess.Popen([str(exe), "-m", "pipelines.definitions", "-d", str(REPO_ROOT),
                                 "-h", "127.0.0.1", "-p", str(port)],
                                cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Webserver(f"http://127.0.0.1:{port}", log)
    try:
        _wait_until_loaded(server, proc)
        yield server
    finally:
        _stop_group(proc)


def _wait_until_loaded(server: Webserver, proc: subprocess.Popen, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited {proc.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{server.url}/server_info", timeout=2).close()
            entries = server.graphql("""{ workspaceOrError { ... on Workspace { locationEntries {
                name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
            } } } }""")["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
            continue
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"] for e in entries
                      if e["locationOrLoadError"]["__typename"] == "PythonError"]
            assert not errors, f"code location failed to load: {errors}"
            return
        time.sleep(0.3)
    pytest.fail(f"dagster-webserver did not load the code location in {timeout} s:\n"
                f"{server.log.read_text()[-3000:]}")


def test_graphql_lists_both_studies_groups_and_checks(webserver):
    groups = {g["groupName"] for repo in webserver.graphql(
        "{ repositoriesOrError { ... on RepositoryConnection { nodes { assetGroups { groupName } } } } }"
    )["repositoriesOrError"]["nodes"] for g in repo["assetGroups"]}
    assert {f"{s}_{layer}" for s in STUDIES for layer in LAYERS} <= groups
    assert {"RS001", "GLOCART"} <= set(STUDIES)

    nodes = webserver.graphql("""{ assetNodes { assetKey { path } groupName
        assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }""")["assetNodes"]
    checks = {(n["groupName"], c["name"], c["blocking"]) for n in nodes
              for c in n["assetChecksOrError"].get("checks", [])}
    for study in STUDIES:
        for layer in ("sdtm", "adam"):
            found = {name for group, name, blocking in checks
                     if group == f"{study}_{layer}" and blocking and "conformance" in name}
            assert found, f"no blocking conformance check in {study}_{layer}: {sorted(checks)}"


class Chromium:
    """Headless Chromium over the DevTools protocol (one page)."""

    def __init__(self, tmp: Path):
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp))
        port = _free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={self.profile}", f"--window-size={WIDTH},{HEIGHT}",
             f"--remote-debugging-port={port}", "--remote-allow-origins=*", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [p for p in json.load(r) if p["type"] == "page"]
                if pages:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                pytest.fail("Chromium did not open its DevTools port")
            time.sleep(0.1)
        self.ws = self._stack.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10))
        self._id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self._id:
                assert "error" not in msg, (method, msg["error"])
                return msg["result"]

    def eval(self, expr: str):
        return self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")

    def open(self, url: str, ready_js: str, timeout: float = 30) -> None:
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.eval(ready_js):
            if time.monotonic() > deadline:
                pytest.fail(f"page never got ready ({ready_js}): {url}\n"
                            f"{(self.eval('document.body && document.body.innerText') or '')[:2000]}")
            time.sleep(0.25)
        # the graph lays out and pans into place after its nodes exist
        time.sleep(1.0)

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return data

    def close(self) -> None:
        self._stack.close()
        _stop_group(self.proc)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def chromium(tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not installed: `make test` installs it (Debian package chromium, "
                    "as root with apt-get); by hand: sudo apt-get install chromium", pytrace=False)
    browser = Chromium(tmp_path)
    try:
        yield browser
    finally:
        browser.close()


def _assert_not_blank(data: bytes) -> None:
    import io

    import numpy as np
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (WIDTH, HEIGHT), (image.format, image.size)
    grey = np.asarray(image.convert("L"), dtype=float)
    # a spinner or an empty page is one flat colour with a small blot
    assert grey.std() > 10, f"screenshot looks blank (pixel std {grey.std():.1f})"
    assert (np.abs(grey - np.median(grey)) > 30).mean() > 0.01, "screenshot has almost no content"


GRAPH_SVG = "document.querySelector('svg[class*=\"svgContainer\"]')"


def _graph_text(browser: Chromium) -> str:
    return browser.eval(f"{GRAPH_SVG} ? {GRAPH_SVG}.textContent : ''") or ""


def test_asset_graph_renders_in_chromium(webserver, chromium, tmp_path):
    # the community sign-up dialog would cover the graph: mark it seen, as a user's click does
    assert webserver.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    groups = [f"{s}_{layer}" for s in STUDIES for layer in LAYERS]
    ready = " && ".join(f"{GRAPH_SVG}.textContent.includes({json.dumps(g)})" for g in groups)
    chromium.open(f"{webserver.url}/asset-groups", f"!!{GRAPH_SVG} && {ready}")
    graph = chromium.screenshot(tmp_path / "asset-graph.png")
    _assert_not_blank(graph)
    dom = chromium.eval("document.documentElement.outerHTML")
    assert "Global asset lineage" in dom
    text = _graph_text(chromium)
    for group in groups:
        assert group in text, f"{group} not drawn in the asset graph"
    for study in STUDIES:
        assert study in text
    shutil.copy(tmp_path / "asset-graph.png", SCREENSHOTS / "dagster-asset-graph.png")

    # the checks: each study's DM and ADSL with their groups expanded, check rows visible
    keys = [f"{s}/{layer}/{ds}" for s in STUDIES for layer, ds in (("sdtm", "DM"), ("adam", "ADSL"))]
    query = " or ".join(f'key:"{k}"' for k in keys)
    expanded = ",".join(f"global@global:{s}_{layer}" for s in STUDIES for layer in ("sdtm", "adam"))
    url = (f"{webserver.url}/asset-groups~{urllib.parse.quote(query, safe='')}/"
           f"?expanded={urllib.parse.quote(expanded, safe='')}")
    # the check counts load after the nodes ("Loading..." until then): wait for all of them
    counted = r"/\d+ \/ [1-9]\d* (?:Passed|Failed)/g"
    chromium.open(url, f"!!{GRAPH_SVG} && "
                       f"({GRAPH_SVG}.textContent.match(/Asset checks/g) || []).length >= {len(keys)} && "
                       f"({GRAPH_SVG}.textContent.match({counted}) || []).length >= {len(keys)}",
                  timeout=90)
    checks = chromium.screenshot(tmp_path / "asset-checks.png")
    _assert_not_blank(checks)
    text = _graph_text(chromium)
    assert text.count("Asset checks") == len(keys)
    for study in STUDIES:
        assert f"{study}_sdtm" in text and f"{study}_adam" in text
    # each node's check row counts its checks ("0 / 1 Passed" before the first run)
    assert len(re.findall(r"\d+ / [1-9]\d* (?:Passed|Failed)", text)) == len(keys), text
    shutil.copy(tmp_path / "asset-checks.png", SCREENSHOTS / "dagster-asset-checks.png")

    # SDTM lineage: DM's RFSTDTC feeds --DY, SE's elements EPOCH, SV takes the visits of the
    # domains that have them, a SUPP-- its parent; the reconciliation report hangs off the raw
    # transfer (a few nodes, so that the graph is drawn whole: it draws only what is on screen)
    nodes = ["raw_export", "sdtm/DM", "sdtm/SE", "sdtm/AE", "sdtm/SUPPAE", "sdtm/LB", "sdtm/SV",
             "reports/sdtm_reconciliation"]
    query = urllib.parse.quote(" or ".join(f'key:"RS001/{n}"' for n in nodes), safe="")
    names = [n.split("/")[-1][:8] for n in nodes]     # long names are drawn shortened
    ready = " && ".join(f"{GRAPH_SVG}.textContent.includes({json.dumps(n)})" for n in names)
    expanded = urllib.parse.quote("global@global:RS001_raw,global@global:RS001_sdtm", safe="")
    chromium.open(f"{webserver.url}/asset-groups~{query}/?expanded={expanded}", f"!!{GRAPH_SVG} && {ready}")
    lineage = chromium.screenshot(tmp_path / "sdtm-lineage.png")
    _assert_not_blank(lineage)
    shutil.copy(tmp_path / "sdtm-lineage.png", SCREENSHOTS / "dagster-sdtm-lineage.png")
