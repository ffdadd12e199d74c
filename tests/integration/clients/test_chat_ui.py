"""Berth's chat UI (`make ui`, tests/js/ui) in headless Chromium against a real runtime.

The page is the React `useStream` hook of @langchain/langgraph-sdk with no Berth-specific
code; the runtime serves the example agent (examples/agent) with its offline model, streaming
a word every 150 ms. The test sends a message and watches the answer grow, approves the refund
interrupt, reloads and finds the thread with its history, each checked against what the
runtime itself holds. It writes the screenshots of docs/ui.md (BERTH_UI_SCREENSHOTS=DIR).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.clients.test_js_clients import CHROMIUM, JS, _QuietHandler, run_node
from tests.integration.runtime.conftest import REPO, RuntimeProcess, launch
from tests.support.servers import Server, create_database, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def berth(
    postgres: Server, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    db = create_database(postgres.uri, "chat_ui")
    rp = launch(
        "serve",
        db,
        redis.uri,
        tmp_path_factory.mktemp("runtime"),
        extra_env={"AGENT_MODEL_PROVIDER": "fake", "AGENT_FAKE_TOKEN_DELAY": "0.15"},
        config=REPO / "examples" / "agent" / "langgraph.json",
    )
    yield rp
    rp.terminate()


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI built by Vite (what `make ui` serves), on its own origin (not the API's)."""
    out = tmp_path_factory.mktemp("ui")
    vite = str(JS / "node_modules" / "vite" / "bin" / "vite.js")
    run_node([vite, "build", "--config", "vite.ui.config.js", "--outDir", str(out)], 120)
    assert (out / "index.html").exists()
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(_QuietHandler, directory=str(out))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_chat_ui_streams_approves_an_interrupt_and_reloads_a_thread(
    berth: RuntimeProcess, ui_url: str, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (hack/ensure-debs.sh)")
    shots = Path(os.environ.get("BERTH_UI_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    proc = run_node(["ui_browser.mjs", ui_url, berth.url, str(shots)], 120)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["ok"] is True, seen
    # two turns: human, AI (tool call), tool, AI, twice; a run per turn and one to resume
    assert seen["messages"] == 8 and seen["runs"] == 3, seen
    for name in ("ui-interrupt.png", "ui-streaming.png", "ui-reload.png"):
        assert (shots / name).stat().st_size > 10_000, name
