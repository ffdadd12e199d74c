"""A dead worker is found from what dies with it (its Postgres session), not by its lease.

With the shipped defaults (30 s lease, 0.5 s liveness checks), a SIGKILLed worker's runs are
running again on another worker within 2 s, and resume after their last checkpoint. A worker
that hangs but stays connected (SIGSTOP) keeps its session, so only its lease gives it away.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from berth_runtime.config import settings_from_env
from langgraph_sdk import get_client
from psycopg.rows import dict_row

from tests.integration.runtime.conftest import RuntimeProcess, launch
from tests.integration.runtime.test_durability import pids_by_step
from tests.integration.runtime.test_multitask import ALL, executed, steps_config, wait_for_step
from tests.support.servers import Server

pytestmark = pytest.mark.integration

# The feature itself: a killed worker's runs are picked up again within 2 s.
PICKUP_BOUND = 2.0


def shipped_defaults() -> dict[str, str]:
    """The timing settings a user gets when setting nothing (conftest shortens them)."""
    s = settings_from_env({"DATABASE_URI": "postgresql://unused"})
    return {
        "BERTH_LEASE_SECONDS": str(s.lease_seconds),
        "BERTH_HEARTBEAT_SECONDS": str(s.heartbeat_seconds),
        "BERTH_REAPER_INTERVAL_SECONDS": str(s.reaper_interval_seconds),
        "BERTH_LIVENESS_SECONDS": str(s.liveness_seconds),
        "BERTH_POLL_SECONDS": str(s.poll_seconds),
    }


async def run_row(database_uri: str, run_id: str) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(
        database_uri, autocommit=True, row_factory=dict_row
    ) as conn:
        cur = await conn.execute(
            "SELECT status, attempt, owner, owner_lock, lease_expires_at FROM run"
            " WHERE run_id = %s",
            (run_id,),
        )
        row = await cur.fetchone()
        assert row is not None
        return dict(row)


async def wait_attempt(database_uri: str, run_id: str, attempt: int, within: float) -> float:
    """Seconds until the run is running again as `attempt` (polled every 20 ms)."""
    start = time.monotonic()
    while True:
        row = await run_row(database_uri, run_id)
        if row["status"] == "running" and row["attempt"] >= attempt:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise TimeoutError(f"run {run_id} not picked up again within {within}s: {row}")
        await asyncio.sleep(0.02)


async def test_sigkilled_workers_runs_are_picked_up_within_2s_with_default_settings(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.log"
    env = shipped_defaults()
    api = launch("api", database_uri, redis.uri, tmp_path, env)
    workers = [launch("worker", database_uri, redis.uri, tmp_path, env) for _ in range(2)]
    client = get_client(url=api.url)
    replacement: RuntimeProcess | None = None
    try:
        threads = [await client.threads.create() for _ in range(6)]
        runs = [
            await client.runs.create(
                t["thread_id"],
                "steps",
                input={"done": []},
                config=steps_config(fx, 0.8),
                durability="sync",
            )
            for t in threads
        ]
        for run in runs:
            await wait_for_step(fx, run["run_id"], "s3")
        # The worker running most of them dies in the middle of their s3.
        by_pid: dict[int, list[dict[str, Any]]] = {w.proc.pid: [] for w in workers}
        for run in runs:
            by_pid[pids_by_step(fx, run["run_id"])["s3"][0]].append(run)
        victim = max(workers, key=lambda w: len(by_pid[w.proc.pid]))
        survivor = next(w for w in workers if w is not victim)
        lost = by_pid[victim.proc.pid]
        assert lost
        victim.kill()
        pickups = await asyncio.gather(
            *(wait_attempt(database_uri, r["run_id"], 2, PICKUP_BOUND * 5) for r in lost)
        )
        print(f"picked up again after SIGKILL: {sorted(round(p, 3) for p in pickups)} s")
        assert max(pickups) < PICKUP_BOUND, pickups
        for run in lost:
            assert (await run_row(database_uri, run["run_id"]))["owner"].split(":")[1] == str(
                survivor.proc.pid
            )
        # The killed worker restarts (its replacement is up well before the runs end).
        replacement = launch("worker", database_uri, redis.uri, tmp_path, env)
        for t, run in zip(threads, runs, strict=True):
            final = await asyncio.wait_for(client.runs.join(t["thread_id"], run["run_id"]), 60)
            assert final["done"] == ALL
            assert (await client.runs.get(t["thread_id"], run["run_id"]))["status"] == "success"
        for run in lost:
            pids = pids_by_step(fx, run["run_id"])
            # s1 and s2 were checkpointed (durability=sync) before the kill: never run again.
            assert pids["s1"] == [victim.proc.pid] and pids["s2"] == [victim.proc.pid]
            assert pids["s3"] == [victim.proc.pid, survivor.proc.pid]
            assert executed(fx, run["run_id"]).count("s4") == 1
        log = api.log() + survivor.log()
        assert "worker lost on attempt 1; re-queued" in log
    finally:
        await client.aclose()
        for p in [*workers, replacement, api]:
            if p is not None:
                p.kill()


async def test_hung_worker_keeps_its_session_and_is_recovered_by_its_lease(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.log"
    # A short lease, so the fallback shows in seconds; liveness checks as shipped.
    env = {**shipped_defaults(), "BERTH_LEASE_SECONDS": "4", "BERTH_HEARTBEAT_SECONDS": "1"}
    api = launch("api", database_uri, redis.uri, tmp_path, env)
    hung = launch("worker", database_uri, redis.uri, tmp_path, env)
    client = get_client(url=api.url)
    other: RuntimeProcess | None = None
    try:
        t = await client.threads.create()
        run = await client.runs.create(
            t["thread_id"],
            "steps",
            input={"done": []},
            config=steps_config(fx, 0.8),
            durability="sync",
        )
        await wait_for_step(fx, run["run_id"], "s2")
        hung.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        # Its session (and so its liveness lock) lives on: the API's reaper does not take the
        # run away early...
        await asyncio.sleep(2.0)
        row = await run_row(database_uri, run["run_id"])
        assert row["status"] == "running" and row["attempt"] == 1
        other = launch("worker", database_uri, redis.uri, tmp_path, env)
        # ...but once the lease lapses, the other worker takes it over.
        await wait_attempt(database_uri, run["run_id"], 2, 15)
        taken = time.monotonic() - stopped
        print(f"hung worker's run taken over after {taken:.2f} s (lease 4 s)")
        assert taken >= 3.0
        final = await asyncio.wait_for(client.runs.join(t["thread_id"], run["run_id"]), 60)
        assert final["done"] == ALL
        assert pids_by_step(fx, run["run_id"])["s1"] == [hung.proc.pid]
        assert pids_by_step(fx, run["run_id"])["s5"] == [other.proc.pid]
    finally:
        await client.aclose()
        hung.proc.send_signal(signal.SIGCONT)
        for p in [hung, other, api]:
            if p is not None:
                p.kill()


async def test_a_worker_whose_session_ends_gives_its_runs_up_and_takes_a_new_lock(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    """Postgres restarted or the session was terminated: the process lives on, but another
    process may now re-queue its runs, so it stops them at once and claims anew."""
    fx = tmp_path / "fx.log"
    env = shipped_defaults()
    worker = launch("serve", database_uri, redis.uri, tmp_path, env)
    client = get_client(url=worker.url)
    try:
        t = await client.threads.create()
        run = await client.runs.create(
            t["thread_id"],
            "steps",
            input={"done": []},
            config=steps_config(fx, 0.8),
            durability="sync",
        )
        await wait_for_step(fx, run["run_id"], "s3")
        first_lock = (await run_row(database_uri, run["run_id"]))["owner_lock"]
        async with await psycopg.AsyncConnection.connect(database_uri, autocommit=True) as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'berth-worker-liveness' AND datname = current_database()"
            )
        await wait_attempt(database_uri, run["run_id"], 2, PICKUP_BOUND)
        row = await run_row(database_uri, run["run_id"])
        assert row["owner_lock"] not in (None, first_lock)  # the same process, a new lock
        final = await asyncio.wait_for(client.runs.join(t["thread_id"], run["run_id"]), 60)
        assert final["done"] == ALL
        steps = executed(fx, run["run_id"])
        assert steps.count("s1") == 1 and steps.count("s2") == 1 and steps.count("s3") == 2
        assert "lost the run; another will take it over" in worker.log()
    finally:
        await client.aclose()
        worker.terminate()
