"""`berth dev` as a user runs it: no DATABASE_URI, an embedded Postgres in `.berth/dev`,
driven by langgraph-sdk. Killed with SIGKILL (with its Postgres, as a crash would), then
started again: the thread, its checkpoints and its pending approval are still there.
A file change reloads the graph; a deep-agent folder is served without Python."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from tests.support.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BERTH = ROOT / ".venv" / "bin" / "berth"
ASK = {"messages": [{"role": "user", "content": "Where is order A-1002?"}]}
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1002, it is broken"}]}


@dataclass
class Dev:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_dev(folder: Path, log: Path, *args: str) -> Dev:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URI", "REDIS_URI")}
    env["AGENT_MODEL_PROVIDER"] = "fake"
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BERTH), "dev", "--port", str(port), *args],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    dev = Dev(proc, port, log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, dev.output()
        if "berth dev started" in dev.output():
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{dev.url}/ok", timeout=2):
                return dev
        time.sleep(0.2)
    raise AssertionError(f"berth dev did not start:\n{dev.output()}")


def postmaster_pid(folder: Path) -> int:
    return int((folder / ".berth/dev/postgres/postmaster.pid").read_text().splitlines()[0])


def gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """A folder for the projects: as root, berth dev runs Postgres as `postgres`, which must
    enter it (pytest's own temporary folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="berth-dev-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def agent_copy(work: Path) -> Iterator[Path]:
    folder = work / "agent"
    shutil.copytree(ROOT / "examples" / "agent", folder, ignore=shutil.ignore_patterns(".berth"))
    yield folder
    # Whatever a failed test left running dies with its berth dev; wait for Postgres.
    pidfile = folder / ".berth/dev/postgres/postmaster.pid"
    if pidfile.is_file():
        with contextlib.suppress(ValueError, OSError):
            os.kill(postmaster_pid(folder), signal.SIGINT)


def last_text(values: Any) -> str:
    return str(values["messages"][-1]["content"])


async def test_threads_survive_sigkill_and_restart(agent_copy: Path, tmp_path: Path) -> None:
    dev = start_dev(agent_copy, tmp_path / "dev1.log")
    try:
        assert "data created in" in dev.output()
        client = get_client(url=dev.url)
        thread_id = (await client.threads.create())["thread_id"]
        answer = await client.runs.wait(thread_id, "agent", input=ASK)
        assert "milk frother" in last_text(answer)
        await client.runs.wait(thread_id, "agent", input=REFUND)
        before = await client.threads.get_state(thread_id)
        assert before["next"] == ["review"], before
        history = await client.threads.get_history(thread_id, limit=100)
        # A crash: berth dev and its Postgres die at once, nothing shuts down cleanly.
        pg = postmaster_pid(agent_copy)
        os.kill(dev.proc.pid, signal.SIGKILL)
        os.kill(pg, signal.SIGKILL)
        dev.proc.wait(10)
        assert gone(pg)
    finally:
        if dev.proc.poll() is None:
            dev.proc.kill()

    dev = start_dev(agent_copy, tmp_path / "dev2.log")
    try:
        assert "data reused in" in dev.output(), dev.output()
        client = get_client(url=dev.url)
        thread = await client.threads.get(thread_id)
        assert thread["status"] == "interrupted"
        after = await client.threads.get_state(thread_id)
        assert after["next"] == ["review"]
        assert after["checkpoint"] == before["checkpoint"]
        assert len(await client.threads.get_history(thread_id, limit=100)) == len(history)
        resumed = await client.runs.wait(thread_id, "agent", command={"resume": {"approved": True}})
        assert "Refund RF-A-1002 issued" in last_text(resumed)
        # SIGTERM: berth dev stops the server, then Postgres (no postmaster left).
        pg = postmaster_pid(agent_copy)
        dev.proc.send_signal(signal.SIGTERM)
        assert dev.proc.wait(60) == 0, dev.output()
        assert gone(pg)
        assert not (agent_copy / ".berth/dev/postgres/postmaster.pid").exists()
    finally:
        if dev.proc.poll() is None:
            dev.proc.kill()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ok", timeout=1):
            return True
    except OSError:
        return False


def test_children_die_with_berth_dev(agent_copy: Path, tmp_path: Path) -> None:
    dev = start_dev(agent_copy, tmp_path / "dev.log", "--no-reload")
    pg = postmaster_pid(agent_copy)
    assert answers(dev.url)
    os.kill(dev.proc.pid, signal.SIGKILL)
    dev.proc.wait(10)
    assert gone(pg), "Postgres outlived berth dev"
    deadline = time.monotonic() + 30
    while answers(dev.url):
        assert time.monotonic() < deadline, "the runtime outlived berth dev"
        time.sleep(0.2)


async def test_a_code_change_reloads_the_graph(agent_copy: Path, tmp_path: Path) -> None:
    dev = start_dev(agent_copy, tmp_path / "dev.log")
    try:
        client = get_client(url=dev.url)
        thread_id = (await client.threads.create())["thread_id"]
        assert "milk frother" in last_text(await client.runs.wait(thread_id, "agent", input=ASK))
        source = agent_copy / "agent.py"
        source.write_text(source.read_text().replace('"milk frother"', '"milk steamer"'))
        deadline = time.monotonic() + 120
        while "changed: agent.py" not in dev.output() or dev.output().count("ready in") < 2:
            assert time.monotonic() < deadline, dev.output()
            await asyncio.sleep(0.2)
        answer = await client.runs.wait(thread_id, "agent", input=ASK)
        assert "milk steamer" in last_text(answer)
        # The same thread, continued by the reloaded graph.
        assert len(answer["messages"]) > 4
    finally:
        dev.proc.send_signal(signal.SIGINT)
        dev.proc.wait(60)


async def test_a_deep_agent_folder_is_served(work: Path, tmp_path: Path) -> None:
    folder = work / "concierge"
    shutil.copytree(ROOT / "examples" / "deep-agent", folder)
    (folder / ".env").write_text("SHOP_SECRET=do-not-print-me\n")
    dev = start_dev(folder, tmp_path / "dev.log")
    try:
        assert "graphs: concierge" in dev.output()
        client = get_client(url=dev.url)
        thread_id = (await client.threads.create())["thread_id"]
        hello = {"messages": [{"role": "user", "content": "hello"}]}
        answer = await client.runs.wait(thread_id, "concierge", input=hello)
        assert last_text(answer) == (
            "concierge: you said 'hello'. Instructions: loaded. Skills: brew-guide, grinder-care."
        )
        call = {"messages": [{"role": "user", "content": 'call opening_hours {"day": "friday"}'}]}
        answer = await client.runs.wait(thread_id, "concierge", input=call)
        assert last_text(answer) == "concierge: opening_hours: Friday: 9:00-20:00"
        assert "do-not-print-me" not in dev.output()
    finally:
        dev.proc.send_signal(signal.SIGINT)
        dev.proc.wait(60)
