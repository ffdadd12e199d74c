"""Berth driven by the official JavaScript clients: the SDK in Node.js, useStream in Chromium.

The scripts live in tests/js (installed by hack/ensure-node.sh from its package-lock.json);
Chromium is Debian's (hack/ensure-debs.sh). A missing tool fails the test with what to run:
the project installs all of them, so a skip would only hide a broken install.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.runtime.conftest import REPO, RuntimeProcess, launch
from tests.support.servers import Server, create_database, free_port

pytestmark = pytest.mark.integration

JS = REPO / "tests" / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not installed: run `make install` (hack/ensure-node.sh)")
    if not (JS / "node_modules" / ".berth-installed").exists():
        pytest.fail("tests/js/node_modules is missing: run `make install` (hack/ensure-node.sh)")
    return found


def run_node(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [node(), *args], cwd=JS, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"node {args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def berth(
    postgres: Server, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    db = create_database(postgres.uri, "js_clients")
    rp = launch("serve", db, redis.uri, tmp_path_factory.mktemp("runtime"))
    yield rp
    rp.terminate()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The useStream page built by Vite, served from its own origin (not the API's)."""
    out = tmp_path_factory.mktemp("page")
    run_node(
        [str(JS / "node_modules" / "vite" / "bin" / "vite.js"), "build", "--outDir", str(out)], 120
    )
    assert (out / "index.html").exists()
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(_QuietHandler, directory=str(out))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_langgraph_sdk_for_node(berth: RuntimeProcess) -> None:
    proc = run_node(["node_client.mjs", berth.url], 180)
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "6 passed, 0 failed", proc.stdout
    assert not [line for line in lines if line.startswith("FAIL")]


def test_cors_lets_a_page_on_another_origin_call_and_resume(berth: RuntimeProcess) -> None:
    origin = "http://127.0.0.1:1"
    pre = httpx.options(
        f"{berth.url}/threads",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,last-event-id",
        },
    )
    assert pre.status_code == 200, pre.text
    assert pre.headers["access-control-allow-origin"] in ("*", origin)
    allowed = pre.headers["access-control-allow-headers"].lower()
    assert "last-event-id" in allowed and "content-type" in allowed
    created = httpx.post(f"{berth.url}/threads", json={}, headers={"Origin": origin})
    exposed = created.headers["access-control-expose-headers"].lower()
    assert "content-location" in exposed and "location" in exposed.split(", ")


def test_react_use_stream_reloads_mid_run_and_reconnects(
    berth: RuntimeProcess, page_url: str
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (hack/ensure-debs.sh)")
    proc = run_node(["browser.mjs", page_url, berth.url], 120)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["ok"] is True
    # useStream rejoined the run it had started, replaying it from the first event
    assert any(seen["runId"] in r["url"] and r["lastEventId"] == "-1" for r in seen["rejoins"]), (
        seen
    )
