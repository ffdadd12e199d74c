"""Launch the real `berth-runtime` as a subprocess against real Postgres and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.support.servers import Server, create_database, free_port

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / ".venv" / "bin" / "berth-runtime"
GRAPHS_CONFIG = REPO / "tests" / "integration" / "graphs" / "langgraph.json"

# Short intervals so lease expiry and reaping take a second or two, not minutes.
FAST_ENV = {
    "BERTH_LEASE_SECONDS": "2",
    "BERTH_HEARTBEAT_SECONDS": "0.3",
    "BERTH_REAPER_INTERVAL_SECONDS": "0.5",
    "BERTH_POLL_SECONDS": "0.2",
    "BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS": "5",
    "CRON_SCHEDULER_SLEEP_TIME": "0.3",
    "LOG_LEVEL": "INFO",
}


@dataclass
class RuntimeProcess:
    role: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no re-queue, exactly like a crash or an OOM kill."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def launch(
    role: str,
    database_uri: str,
    redis_uri: str | None,
    tmp_path: Path,
    extra_env: dict[str, str] | None = None,
    config: Path = GRAPHS_CONFIG,
    wait: bool = True,
    port: int | None = None,
    host: str = "127.0.0.1",
) -> RuntimeProcess:
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URI", "DATABASE_URI")}
    env.update(FAST_ENV)
    env["DATABASE_URI"] = database_uri
    if redis_uri:
        env["REDIS_URI"] = redis_uri
    env.update(extra_env or {})
    log_path = tmp_path / f"berth-{role}-{port}.log"
    proc = subprocess.Popen(
        [str(BIN), role, "--config", str(config), "--host", host, "--port", str(port)],
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=str(tmp_path),
    )
    rp = RuntimeProcess(role, port, proc, log_path, env, host)
    if wait:
        wait_ready(rp)
    return rp


def wait_ready(rp: RuntimeProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not rp.alive():
            raise RuntimeError(f"berth-runtime {rp.role} exited early:\n{rp.log()[-4000:]}")
        try:
            if httpx.get(f"{rp.url}/ok", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"berth-runtime {rp.role} not ready:\n{rp.log()[-4000:]}")


@pytest.fixture(scope="module")
def module_db(postgres: Server) -> str:
    return create_database(postgres.uri, f"m_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def server(
    module_db: str, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    """One `berth-runtime serve` per test module (API and workers in one process)."""
    rp = launch("serve", module_db, redis.uri, tmp_path_factory.mktemp("runtime"))
    yield rp
    rp.terminate()


@pytest.fixture
async def client(server: RuntimeProcess) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=server.url)
    yield c
    await c.aclose()


@pytest.fixture
async def http(server: RuntimeProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c
