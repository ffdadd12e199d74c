"""The API when what it depends on is missing or when a client sends too much: a clear
answer it can act on, never a 500, and recovery without a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.runtime.conftest import launch
from tests.support.servers import Server, create_database, postgres_server, wait_for_port

pytestmark = pytest.mark.integration

LIMIT = 4096


async def _chunks(total: int) -> AsyncIterator[bytes]:
    yield b'{"metadata": {"pad": "'
    for _ in range(total // 1024):
        yield b"x" * 1024
    yield b'"}}'


def _start_again(pg: Server) -> None:
    """Start the stopped Postgres with the same command (same data folder and port)."""
    pg.proc = subprocess.Popen(pg.proc.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(pg.port, 60, pg.proc)


async def test_postgres_down_answers_503_with_retry_after_and_recovers(
    redis: Server, tmp_path: Path
) -> None:
    with postgres_server() as pg:
        db = create_database(pg.uri, "deps_down")
        api = launch(
            "serve",
            db,
            redis.uri,
            tmp_path,
            {"BERTH_MAX_REQUEST_BYTES": str(LIMIT), "BERTH_DB_POOL_TIMEOUT_SECONDS": "3"},
        )
        try:
            async with httpx.AsyncClient(base_url=api.url, timeout=90) as http:
                thread = (await http.post("/threads", json={})).json()["thread_id"]

                # Too big, announced (Content-Length) or streamed (chunked): 413, nothing kept.
                big = await http.post("/threads", json={"metadata": {"pad": "x" * 2 * LIMIT}})
                assert big.status_code == 413, big.text
                assert "BERTH_MAX_REQUEST_BYTES" in big.json()["detail"]
                streamed = await http.post(
                    "/threads",
                    content=_chunks(4 * LIMIT),
                    headers={"content-type": "application/json"},
                )
                assert streamed.status_code == 413, streamed.text
                found = await http.post("/threads/search", json={"limit": 100})
                assert [t["thread_id"] for t in found.json()] == [thread]

                # Postgres stops (fast shutdown of the postmaster): 503 and when to retry.
                # (`pg.proc` is the runuser parent of the postmaster when we are root.)
                pidfile = pg.workdir / "data" / "postmaster.pid"
                started = time.monotonic()
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGINT)
                pg.proc.wait(30)
                for _ in range(2):  # a broken pooled connection, then no connection at all
                    r = await http.get(f"/threads/{thread}")
                    assert r.status_code == 503, r.text
                    assert r.headers["retry-after"] == "5"
                    assert r.json()["detail"].startswith("database unavailable, retry later")
                took = time.monotonic() - started
                print(f"two 503 answers within {took:.1f} s of the outage (pool timeout 3 s)")
                assert took < 20

                # Back: the same process answers again, with the data that was there.
                await asyncio.to_thread(_start_again, pg)
                deadline = time.monotonic() + 60
                while True:
                    r = await http.get(f"/threads/{thread}")
                    if r.status_code == 200:
                        break
                    assert r.status_code == 503 and time.monotonic() < deadline, r.text
                    await asyncio.sleep(0.5)
                assert r.json()["thread_id"] == thread
                assert api.proc.poll() is None
        finally:
            api.terminate()


async def test_a_full_queue_and_too_many_streams_are_shed_with_429(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    """No worker drains the queue here (the `api` role runs no runs): the fourth run is
    refused while three wait; a client's third open stream is refused while two are open,
    and accepted again once one closes."""
    limits = {"BERTH_MAX_PENDING_RUNS": "3", "BERTH_MAX_STREAMS_PER_CLIENT": "2"}
    api = launch("api", database_uri, redis.uri, tmp_path, limits)
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            thread = (await http.post("/threads", json={})).json()["thread_id"]
            body = {"assistant_id": "steps", "input": {"done": []}}
            created = []
            for _ in range(3):
                r = await http.post("/runs", json=body)
                assert r.status_code == 200, r.text
                created.append(r.json())
            await asyncio.sleep(0.6)  # the cached queue depth is at most 0.5 s old
            shed = await http.post("/runs", json=body)
            assert shed.status_code == 429, shed.text
            assert shed.headers["retry-after"] == "5"
            assert "BERTH_MAX_PENDING_RUNS" in shed.json()["detail"]
            pending = await http.post(f"/threads/{thread}/runs", json=body)
            assert pending.status_code == 429  # stateful runs count the same queue

            run = created[0]
            stream_url = f"/threads/{run['thread_id']}/runs/{run['run_id']}/stream"
            async with http.stream("GET", stream_url) as first, http.stream("GET", stream_url):
                assert first.status_code == 200
                third = await http.get(stream_url)
                assert third.status_code == 429, third.text
                assert "BERTH_MAX_STREAMS_PER_CLIENT" in third.json()["detail"]
            # Closed streams stop counting once the server notices (its next heartbeat).
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                async with http.stream("GET", stream_url) as again:
                    if again.status_code == 200:
                        break
                    assert again.status_code == 429
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.5)
    finally:
        api.terminate()
