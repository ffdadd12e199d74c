"""Serve the compat graphs by Berth and by the reference (`langgraph dev`) side by side.

The reference is `langgraph dev` from langgraph-cli[inmem], installed into .venv-bench by the
project's own hack/ensure-bench-venv.sh (the same peer bench/ compares against). If it cannot
be installed or started the tests fail with its log: a compatibility suite that silently
skips would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.runtime.conftest import launch
from tests.support.servers import Server, free_port

REPO = Path(__file__).resolve().parents[3]
GRAPHS = Path(__file__).resolve().parent / "graphs"
BENCH_VENV = REPO / ".venv-bench"


@dataclass
class Peer:
    """One server under comparison: its name, base URL and the cleanup log its factory writes."""

    name: str
    url: str
    cleanup_log: Path
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def _wait_ok(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"langgraph dev exited ({proc.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"langgraph dev not ready after {timeout}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """`langgraph dev` (in-memory reference server) on a copy of the compat graphs."""
    install = subprocess.run(
        ["bash", str(REPO / "hack" / "ensure-bench-venv.sh")],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        pytest.fail(f"installing the reference failed:\n{install.stdout}\n{install.stderr}")
    work = tmp_path_factory.mktemp("reference")
    graphs = work / "graphs"
    shutil.copytree(GRAPHS, graphs, ignore=shutil.ignore_patterns("__pycache__"))
    log, cleanup = work / "langgraph-dev.log", work / "cleanup.log"
    port = free_port()
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "COMPAT_CLEANUP_LOG": str(cleanup),
    }
    env.pop("VIRTUAL_ENV", None)
    command = [
        str(BENCH_VENV / "bin" / "langgraph"), "dev", "--no-browser", "--no-reload",
        "--host", "127.0.0.1", "--port", str(port), "--config", "langgraph.json",
        "--server-log-level", "WARNING",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=graphs)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ok(url, proc, log, timeout=180)
    except BaseException as e:
        proc.kill()
        proc.wait(10)
        pytest.fail(f"the reference server did not start: {e}")
    yield Peer("langgraph dev", url, cleanup, log)
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def berth(
    postgres: Server, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Peer]:
    """`berth-runtime serve` on the compat graphs, against real Postgres and Redis."""
    from tests.support.servers import create_database

    db = create_database(postgres.uri, "compat")
    work = tmp_path_factory.mktemp("berth-compat")
    cleanup = work / "cleanup.log"
    rp = launch(
        "serve",
        db,
        redis.uri,
        work,
        extra_env={"COMPAT_CLEANUP_LOG": str(cleanup)},
        config=GRAPHS / "langgraph.json",
    )
    yield Peer("berth", rp.url, cleanup, rp.log_path)
    rp.terminate()


@pytest.fixture
async def peers(berth: Peer, reference: Peer) -> AsyncIterator[list[Peer]]:
    yield [berth, reference]
