"""Crashes, retries, graceful shutdown, Redis outages, concurrent start-up: nothing is lost."""

from __future__ import annotations

import asyncio
import collections
import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from berth_runtime.db.sql import migration_files
from langgraph_sdk import get_client

from tests.integration.runtime.conftest import GRAPHS_CONFIG, RuntimeProcess, launch, wait_ready
from tests.integration.runtime.test_multitask import ALL, executed, steps_config, wait_for_step
from tests.support.servers import Server, free_port, redis_server

pytestmark = pytest.mark.integration


def pids_by_step(side_effects: Path, run_id: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = collections.defaultdict(list)
    for line in side_effects.read_text().splitlines():
        rid, step, pid = line.split(":")
        if rid == run_id:
            out[step].append(int(pid))
    return dict(out)


def api_only(
    database_uri: str, redis_uri: str | None, tmp_path: Path, **env: str
) -> RuntimeProcess:
    """The API tier: serves HTTP and reaps expired leases, but runs no graphs."""
    return launch("serve", database_uri, redis_uri, tmp_path, {"N_JOBS_PER_WORKER": "0", **env})


@pytest.mark.parametrize("durability", ["async", "sync"])
async def test_killed_worker_run_is_finished_by_another_without_redoing_steps(
    database_uri: str, redis: Server, tmp_path: Path, durability: str
) -> None:
    fx = tmp_path / "fx.log"
    api = api_only(database_uri, redis.uri, tmp_path)
    worker_a = launch("worker", database_uri, redis.uri, tmp_path)
    worker_b: RuntimeProcess | None = None
    client = get_client(url=api.url)
    try:
        t = await client.threads.create()
        run = await client.runs.create(
            t["thread_id"],
            "steps",
            input={"done": []},
            config=steps_config(fx, 0.8),
            durability=durability,
        )
        await wait_for_step(fx, run["run_id"], "s3")
        worker_a.kill()  # SIGKILL in the middle of s3
        assert (await client.runs.get(t["thread_id"], run["run_id"]))["status"] == "running"
        # What the crashed worker had checkpointed. With `sync` a step's checkpoint is written
        # before the next step starts; with `async` (the default) it is written while the next
        # step runs, so s2's checkpoint may or may not have landed when s3 began.
        saved = (await client.threads.get_state(t["thread_id"]))["values"]["done"]
        assert saved == ["s1", "s2"] if durability == "sync" else saved in (["s1"], ["s1", "s2"])
        worker_b = launch("worker", database_uri, redis.uri, tmp_path)
        final = await asyncio.wait_for(client.runs.join(t["thread_id"], run["run_id"]), 60)
        assert final["done"] == ALL
        assert (await client.runs.get(t["thread_id"], run["run_id"]))["status"] == "success"
        pids = pids_by_step(fx, run["run_id"])
        a, b = worker_a.proc.pid, worker_b.proc.pid
        for step in saved:  # checkpointed before the crash: never executed again
            assert pids[step] == [a], step
        for step in ALL[len(saved) : 3]:  # started but not checkpointed: run again by B
            assert pids[step] == [a, b], step
        assert pids["s4"] == [b] and pids["s5"] == [b]
        assert (await client.threads.get(t["thread_id"]))["status"] == "idle"
        assert "re-queued" in api.log() or "re-queued" in worker_b.log()
    finally:
        await client.aclose()
        for p in (worker_b, api):
            if p is not None:
                p.terminate()


async def test_run_fails_clearly_after_max_attempts(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.log"
    api = api_only(database_uri, redis.uri, tmp_path, BG_JOB_MAX_RETRIES="2")
    client = get_client(url=api.url)
    workers: list[RuntimeProcess] = []
    try:
        t = await client.threads.create()
        config: dict[str, Any] = steps_config(fx, 0.0)
        config["configurable"]["crash_at"] = "s2"  # the node kills its worker, every attempt
        run = await client.runs.create(
            t["thread_id"], "steps", input={"done": []}, config=config, durability="sync"
        )
        for _ in range(2):
            w = launch(
                "worker", database_uri, redis.uri, tmp_path, {"BG_JOB_MAX_RETRIES": "2"}, wait=False
            )
            workers.append(w)
            await asyncio.wait_for(asyncio.to_thread(w.proc.wait), 30)
        final = await asyncio.wait_for(client.runs.join(t["thread_id"], run["run_id"]), 30)
        assert final["__error__"]["error"] == "RunAttemptsExceeded"
        assert "exceeded max attempts (2)" in final["__error__"]["message"]
        assert (await client.runs.get(t["thread_id"], run["run_id"]))["status"] == "error"
        assert (await client.threads.get(t["thread_id"]))["status"] == "error"
        # s1 was checkpointed by the first attempt and never ran again
        assert executed(fx, run["run_id"]) == ["s1", "s2", "s2"]
    finally:
        await client.aclose()
        for w in workers:
            w.kill()
        api.terminate()


async def test_sigterm_finishes_within_grace_or_requeues(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.log"
    api = launch("api", database_uri, redis.uri, tmp_path)
    client = get_client(url=api.url)
    others: list[RuntimeProcess] = []
    try:
        # 1. a short run finishes during the grace period; the worker then exits cleanly
        w1 = launch("worker", database_uri, redis.uri, tmp_path)
        others.append(w1)
        t = await client.threads.create()
        run = await client.runs.create(
            t["thread_id"], "steps", input={"done": []}, config=steps_config(fx, 0.3)
        )
        await wait_for_step(fx, run["run_id"], "s2")
        await asyncio.to_thread(w1.terminate, 30)
        assert "Application shutdown complete" in w1.log()  # uvicorn re-raises SIGTERM after
        assert (await client.runs.get(t["thread_id"], run["run_id"]))["status"] == "success"

        # 2. a long run outlives a 1 s grace period: it is re-queued, not lost or failed
        w2 = launch(
            "worker", database_uri, redis.uri, tmp_path, {"BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS": "1"}
        )
        others.append(w2)
        run2 = await client.runs.create(
            t["thread_id"], "steps", input={"done": []}, config=steps_config(fx, 1.0)
        )
        await wait_for_step(fx, run2["run_id"], "s2")
        await asyncio.to_thread(w2.terminate, 30)
        assert (await client.runs.get(t["thread_id"], run2["run_id"]))["status"] == "pending"
        assert "re-queued at shutdown" in w2.log()
        w3 = launch("worker", database_uri, redis.uri, tmp_path)
        others.append(w3)
        final = await asyncio.wait_for(client.runs.join(t["thread_id"], run2["run_id"]), 60)
        assert final["done"][-5:] == ALL
        pids = pids_by_step(fx, run2["run_id"])
        assert pids["s1"] == [w2.proc.pid]  # not executed again after the re-queue
        assert pids["s5"] == [w3.proc.pid]
    finally:
        await client.aclose()
        for p in [*others, api]:
            p.terminate()


async def test_runs_complete_without_redis(database_uri: str, tmp_path: Path) -> None:
    fx = tmp_path / "fx.log"
    with redis_server() as own_redis:
        server = launch("serve", database_uri, own_redis.uri, tmp_path)
        client = get_client(url=server.url)
        try:
            t = await client.threads.create()
            out = await client.runs.wait(t["thread_id"], "hitl", input={"topic": "a"})
            assert out["log"] == ["draft:a"]
            own_redis.kill()  # Redis dies while the server runs

            out = await asyncio.wait_for(
                client.runs.wait(t["thread_id"], "hitl", command={"resume": "ok"}), 30
            )
            assert out["log"][-1] == "published:ok"
            parts = [
                p
                async for p in client.runs.stream(
                    None, "steps", input={"done": []}, config=steps_config(fx, 0.0)
                )
            ]
            assert parts[0].event == "metadata"
            assert [p.event for p in parts][-1] == "end"
            assert [p for p in parts if p.event == "values"][-1].data["done"] == ALL

            # cancellation still reaches the worker, through its heartbeat
            run = await client.runs.create(
                t["thread_id"], "steps", input={"done": []}, config=steps_config(fx, 0.5)
            )
            await wait_for_step(fx, run["run_id"], "s1")
            await asyncio.wait_for(client.runs.cancel(t["thread_id"], run["run_id"], wait=True), 30)
            assert (await client.runs.get(t["thread_id"], run["run_id"]))["status"] == "interrupted"
            assert "falling back to Postgres polling" in server.log()
        finally:
            await client.aclose()
            server.terminate()

    # and a server that starts while Redis is down works too (and enforces run timeouts)
    dead_redis = own_redis.uri
    server = launch("serve", database_uri, dead_redis, tmp_path, {"BG_JOB_TIMEOUT_SECS": "1.5"})
    client = get_client(url=server.url)
    try:
        out = await asyncio.wait_for(client.runs.wait(None, "factory", input={}), 30)
        assert out["greeting"].startswith("hello")
        t = await client.threads.create()
        slow = await asyncio.wait_for(
            client.runs.wait(
                t["thread_id"],
                "steps",
                input={"done": []},
                config=steps_config(fx, 1.0),
                raise_error=False,
            ),
            30,
        )
        assert slow["__error__"]["error"] == "TimeoutError" and len(slow["done"]) < 5
        [run] = await client.runs.list(t["thread_id"])
        assert run["status"] == "timeout"
    finally:
        await client.aclose()
        server.terminate()


async def test_replicas_starting_together_migrate_once(database_uri: str, tmp_path: Path) -> None:
    procs = [launch("api", database_uri, None, tmp_path, wait=False) for _ in range(2)]
    try:
        for p in procs:
            await asyncio.to_thread(wait_ready, p)
        with psycopg.connect(database_uri) as conn:
            rows = conn.execute("SELECT version FROM berth_migrations ORDER BY version").fetchall()
            assert rows == [(v,) for v, _, _ in migration_files()]
            assistants = conn.execute("SELECT count(*) FROM assistant").fetchone()
            # one default assistant per graph, not one per replica
            assert assistants == (len(json.loads(GRAPHS_CONFIG.read_text())["graphs"]),)
        async with httpx.AsyncClient() as http:
            for p in procs:
                assert (await http.get(f"{p.url}/ok")).status_code == 200
    finally:
        for p in procs:
            p.terminate()


async def test_two_workers_share_the_queue_one_run_per_thread_at_a_time(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.log"
    env = {"N_JOBS_PER_WORKER": "4"}
    server = launch("serve", database_uri, redis.uri, tmp_path, env, wait=False)
    worker = launch("worker", database_uri, redis.uri, tmp_path, env, wait=False)
    await asyncio.to_thread(wait_ready, server)
    await asyncio.to_thread(wait_ready, worker)
    client = get_client(url=server.url)
    try:
        threads = [(await client.threads.create())["thread_id"] for _ in range(6)]
        runs: dict[str, list[str]] = {tid: [] for tid in threads}
        for _ in range(3):
            for tid in threads:
                run = await client.runs.create(
                    tid, "steps", input={"done": []}, config=steps_config(fx, 0.05)
                )
                runs[tid].append(run["run_id"])
        for tid, run_ids in runs.items():
            await asyncio.wait_for(client.runs.join(tid, run_ids[-1]), 60)
            statuses = [(await client.runs.get(tid, rid))["status"] for rid in run_ids]
            assert statuses == ["success"] * 3
            assert (await client.threads.get_state(tid))["values"]["done"] == ALL * 3
        lines = [line.split(":") for line in fx.read_text().splitlines()]
        per_run = collections.Counter(rid for rid, _, _ in lines)
        assert set(per_run.values()) == {5}  # every step of every run exactly once
        for run_ids in runs.values():
            order = [rid for rid, _, _ in lines if rid in run_ids]
            assert order == [rid for rid in run_ids for _ in range(5)]  # FIFO, never overlapping
        assert {int(pid) for _, _, pid in lines} == {server.proc.pid, worker.proc.pid}
    finally:
        await client.aclose()
        worker.terminate()
        server.terminate()


async def test_unreachable_database_is_retried_then_fails_clearly(tmp_path: Path) -> None:
    dead = f"postgresql://berth@127.0.0.1:{free_port()}/nowhere"
    proc = launch("api", dead, None, tmp_path, {"BERTH_DB_WAIT_SECONDS": "1.5"}, wait=False)
    code = await asyncio.to_thread(proc.proc.wait, 60)
    assert code != 0
    log = proc.log()
    assert "postgres not reachable yet" in log and "Application startup failed" in log
