"""CronJob semantics of the cron scheduler against real Postgres, Redis and runtime workers.

The scheduler runs in-process with a `ManualClock` (the test decides what time it is); a
real `berth-runtime serve` subprocess executes the runs it creates. That subprocess's own
scheduler is parked (CRON_SCHEDULER_SLEEP_TIME=3600) so only the test's clock fires ticks.
Crons are written exactly as the AgentCron sync writes them (`cron_row` + `upsert_owned_cron`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from berth_runtime import faults
from berth_runtime.assistants import assistant_uuid
from berth_runtime.bus import Bus
from berth_runtime.config import load_config, settings_from_env
from berth_runtime.context import Runtime
from berth_runtime.crons.agentcron import cron_row
from berth_runtime.crons.clock import ManualClock
from berth_runtime.crons.policy import tick_key, tick_run_id
from berth_runtime.crons.scheduler import (
    fire_due,
    prune_ticks,
    recover_ticks,
    settle_ticks,
    start_tick,
)
from berth_runtime.db import q
from berth_runtime.db.pool import open_pool
from berth_runtime.graphs.loader import GraphRegistry
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError

from tests.integration.runtime.conftest import GRAPHS_CONFIG, RuntimeProcess, launch, wait_ready
from tests.support.servers import Server

pytestmark = pytest.mark.integration

# a run of `steps` takes 5 x sleep seconds
SLOW = {"configurable": {"sleep": 1.0}}


@pytest.fixture(scope="module")
def server(
    module_db: str, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    rp = launch(
        "serve",
        module_db,
        redis.uri,
        tmp_path_factory.mktemp("runtime"),
        extra_env={"CRON_SCHEDULER_SLEEP_TIME": "3600"},
        wait=False,
    )
    wait_ready(rp, timeout=240)  # generous: the box may be busy
    yield rp
    rp.terminate()


@pytest.fixture(scope="module")
async def rt(server: RuntimeProcess, module_db: str, redis: Server) -> AsyncIterator[Runtime]:
    """The runtime's objects built in this process (no HTTP, no workers): the scheduler's view."""
    settings = settings_from_env({"DATABASE_URI": module_db, "REDIS_URI": redis.uri})
    config = load_config(Path(GRAPHS_CONFIG))
    pool = await open_pool(module_db, 5, "test-scheduler")
    checkpointer = AsyncPostgresSaver(pool)
    memory = AsyncPostgresStore(pool)
    graphs = GraphRegistry.load(config.graphs, config.dependencies, checkpointer, memory)
    bus = Bus(redis.uri, module_db, 60)
    try:
        yield Runtime(settings, config, pool, checkpointer, memory, graphs, bus, "api")
    finally:
        await bus.close()
        await pool.close()


@pytest.fixture(autouse=True)
async def no_crons_left(rt: Runtime) -> AsyncIterator[None]:
    """Each test sees only its own crons (a later clock would make earlier ones due too)."""
    yield
    async with rt.pool.connection() as conn:
        await conn.execute("DELETE FROM cron")


class Events:
    """Collects the tick decisions the scheduler reports (what becomes Kubernetes Events)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, cron: dict[str, Any], reason: str, message: str, warn: bool) -> None:
        self.seen.append((reason, message))

    def reasons(self) -> list[str]:
        return [r for r, _ in self.seen]


def base_time() -> datetime:
    """A minute boundary a little ahead, so run timestamps stay realistic."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now + timedelta(minutes=1)


async def make_cron(rt: Runtime, due: datetime, graph: str = "factory", **spec: Any) -> uuid.UUID:
    uid = str(uuid.uuid4())
    obj = {
        "metadata": {"name": f"c-{uid[:8]}", "namespace": "it", "uid": uid},
        "spec": {
            "deploymentRef": {"name": "agent"},
            "assistantId": graph,
            "schedule": "* * * * *",
            "timeZone": "UTC",
            "concurrencyPolicy": "Forbid",
            **spec,
        },
    }
    row = cron_row(obj, "agent", assistant_uuid(rt, graph))
    row["next_run_date"] = due
    async with rt.pool.connection() as conn:
        await q.fetchone(conn, "upsert_owned_cron", **row)
    cid: uuid.UUID = row["cron_id"]
    return cid


async def ticks(rt: Runtime, cron_id: uuid.UUID) -> list[dict[str, Any]]:
    async with rt.pool.connection() as conn:
        return [dict(r) for r in await q.fetchall(conn, "list_ticks", cron_id=cron_id)]


async def run_status(client: LangGraphClient, tick: dict[str, Any]) -> str:
    run = await client.runs.get(str(tick["thread_id"]), str(tick["run_id"]))
    return str(run["status"])


async def wait_status(client: LangGraphClient, tick: dict[str, Any], wanted: set[str]) -> str:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        status = await run_status(client, tick)
        if status in wanted or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.1)


async def test_forbid_skips_a_tick_while_a_run_is_active(
    rt: Runtime, client: LangGraphClient
) -> None:
    t = base_time()
    clock, events = ManualClock(t), Events()
    cid = await make_cron(rt, t, graph="steps", config=SLOW, onRunCompleted="Keep")
    assert await fire_due(rt, clock, events) == 1
    clock.set(t + timedelta(minutes=1, seconds=1))
    assert await fire_due(rt, clock, events) == 0  # the first run is still active
    first, second = await ticks(rt, cid)
    assert first["decision"] == "started" and second["decision"] == "skipped"
    assert str(first["run_id"]) in second["reason"] and "Forbid" in second["reason"]
    assert events.reasons() == ["Started", "TickSkipped"]
    assert await wait_status(client, first, {"success"}) == "success"
    await settle_ticks(rt)
    clock.set(t + timedelta(minutes=2, seconds=1))
    assert await fire_due(rt, clock, events) == 1  # nothing active any more
    assert [k["decision"] for k in await ticks(rt, cid)] == ["started", "skipped", "started"]
    meta = (await client.runs.get(str(first["thread_id"]), str(first["run_id"])))["metadata"]
    assert meta["cron_id"] == str(cid) and meta["cron_tick"].endswith(t.strftime("%H:%M:00Z"))


async def test_replace_cancels_the_active_run_first(rt: Runtime, client: LangGraphClient) -> None:
    t = base_time()
    clock, events = ManualClock(t), Events()
    cid = await make_cron(
        rt, t, graph="steps", config={"configurable": {"sleep": 3.0}}, concurrencyPolicy="Replace"
    )
    assert await fire_due(rt, clock, events) == 1
    (first,) = await ticks(rt, cid)
    assert await wait_status(client, first, {"running"}) == "running"
    clock.set(t + timedelta(minutes=1, seconds=1))
    assert await fire_due(rt, clock, events) == 1
    _, second = await ticks(rt, cid)
    assert second["decision"] == "started" and second["run_id"] != first["run_id"]
    assert events.reasons() == ["Started", "Replaced", "Started"]
    # stateless runs have their own threads: the old one is interrupted, the new one goes on
    assert await wait_status(client, first, {"interrupted"}) == "interrupted"
    assert await run_status(client, second) in {"pending", "running", "success"}
    await client.runs.cancel(str(second["thread_id"]), str(second["run_id"]))


async def test_only_the_latest_missed_tick_runs_within_the_deadline(
    rt: Runtime, client: LangGraphClient
) -> None:
    t = base_time()
    clock, events = ManualClock(t + timedelta(seconds=45)), Events()
    cid = await make_cron(
        rt, t, startingDeadlineSeconds=30, concurrencyPolicy="Allow", onRunCompleted="Keep"
    )
    assert await fire_due(rt, clock, events) == 0  # 45 s late, deadline 30 s: missed
    (missed,) = await ticks(rt, cid)
    assert missed["decision"] == "missed" and missed["run_id"] is None
    assert events.reasons() == ["MissedSchedule"] and "startingDeadlineSeconds" in events.seen[0][1]
    # down until t+9m10s: ticks t+1m .. t+9m were due; only t+9m runs, within its deadline
    clock.set(t + timedelta(minutes=9, seconds=10))
    assert await fire_due(rt, clock, events) == 1
    rows = await ticks(rt, cid)
    assert [(k["scheduled_at"], k["decision"]) for k in rows] == [
        (t, "missed"),
        (t + timedelta(minutes=9), "started"),
    ]
    assert "8 earlier tick(s) missed" in events.seen[1][1]  # t+1m .. t+8m
    async with rt.pool.connection() as conn:
        cron = await q.fetchone(conn, "get_cron", cron_id=cid)
    assert cron is not None and cron["next_run_date"] == t + timedelta(minutes=10)
    assert await wait_status(client, rows[1], {"success"}) == "success"


async def test_a_retried_or_concurrent_tick_starts_one_run(rt: Runtime) -> None:
    t = base_time()
    clock, events = ManualClock(t + timedelta(seconds=1)), Events()
    cid = await make_cron(rt, t, concurrencyPolicy="Allow")
    # two schedulers at once: one claims, the other finds next_run_date moved
    results = await asyncio.gather(*(fire_due(rt, clock, events) for _ in range(4)))
    assert sum(results) == 1
    # a retry that still sees the old next_run_date (e.g. a replica that read it before the
    # first claim committed) hits the (cron_id, scheduled_at) key and starts nothing
    async with rt.pool.connection() as conn:
        await conn.execute("UPDATE cron SET next_run_date = %s WHERE cron_id = %s", (t, cid))
    assert await fire_due(rt, clock, events) == 0
    rows = await ticks(rt, cid)
    assert len(rows) == 1 and rows[0]["decision"] == "started"
    async with rt.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM run WHERE metadata @> %s::jsonb",
            (f'{{"cron_id": "{cid}"}}',),
        )
        row = await cur.fetchone()
    assert row is not None and row["n"] == 1


async def test_stateful_cron_creates_its_thread(rt: Runtime, client: LangGraphClient) -> None:
    t = base_time()
    clock, events = ManualClock(t), Events()
    thread_id = str(uuid.uuid4())
    cid = await make_cron(rt, t, threadId=thread_id)
    assert await fire_due(rt, clock, events) == 1
    (tick,) = await ticks(rt, cid)
    assert str(tick["thread_id"]) == thread_id
    assert await wait_status(client, tick, {"success"}) == "success"
    clock.set(t + timedelta(minutes=1))
    assert await fire_due(rt, clock, events) == 1  # the second run appends to the same thread
    runs = await client.runs.list(thread_id)
    assert len(runs) == 2 and {r["metadata"]["cron_id"] for r in runs} == {str(cid)}


async def test_kept_threads_respect_the_history_limits(
    rt: Runtime, client: LangGraphClient
) -> None:
    t = base_time()
    clock, events = ManualClock(t), Events()
    cid = await make_cron(
        rt, t, onRunCompleted="Keep", successfulRunsHistoryLimit=1, concurrencyPolicy="Allow"
    )
    for i in range(3):
        clock.set(t + timedelta(minutes=i))
        assert await fire_due(rt, clock, events) == 1
    before = await ticks(rt, cid)
    for tick in before:
        assert await wait_status(client, tick, {"success"}) == "success"
    await settle_ticks(rt)
    rows = await ticks(rt, cid)
    assert [k["run_status"] for k in rows] == ["success"] * 3
    kept = [k for k in rows if k["thread_id"] is not None]
    assert [k["scheduled_at"] for k in kept] == [t + timedelta(minutes=2)]  # the newest
    assert (await client.threads.get(str(kept[0]["thread_id"])))["thread_id"]
    for k in before[:2]:
        with pytest.raises(NotFoundError):
            await client.threads.get(str(k["thread_id"]))


async def test_crons_of_agentcrons_change_only_through_the_agentcron(
    rt: Runtime, http: httpx.AsyncClient
) -> None:
    cid = await make_cron(rt, base_time())
    r = await http.patch(f"/runs/crons/{cid}", json={"enabled": False})
    assert r.status_code == 409 and "managed by AgentCron" in r.json()["detail"]
    r = await http.delete(f"/runs/crons/{cid}")
    assert r.status_code == 409 and "change or delete the AgentCron" in r.json()["detail"]
    assert (await http.get(f"/runs/crons/{cid}")).json()["enabled"] is True  # still readable


async def test_the_tick_table_is_bounded(rt: Runtime) -> None:
    t = base_time()
    cid = await make_cron(rt, t)
    async with rt.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO cron_tick (cron_id, scheduled_at, decision) "
            "SELECT %s, %s::timestamptz - make_interval(mins => i), 'missed' "
            "FROM generate_series(1, 30) AS i",
            (cid, t),
        )
        # an old tick whose run is still going is kept whatever its age
        await conn.execute(
            "INSERT INTO cron_tick (cron_id, scheduled_at, decision, run_id) "
            "VALUES (%s, %s::timestamptz - interval '1 day', 'started', %s)",
            (cid, t, uuid.uuid4()),
        )
    assert await prune_ticks(rt, keep=10) == 20  # 31 ticks: 10 newest and the active one stay
    rows = await ticks(rt, cid)
    assert len(rows) == 11 and rows[0]["decision"] == "started"
    assert rows[-1]["scheduled_at"] == t - timedelta(minutes=1)  # the newest kept


async def cron_runs(rt: Runtime, cron_id: uuid.UUID) -> list[dict[str, Any]]:
    async with rt.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT run_id, status, metadata ->> 'cron_tick' AS tick FROM run"
            " WHERE metadata @> %s::jsonb ORDER BY created_at",
            (f'{{"cron_id": "{cron_id}"}}',),
        )
        return [dict(r) for r in await cur.fetchall()]


async def test_a_scheduler_that_dies_after_claiming_a_tick_loses_nothing(rt: Runtime) -> None:
    """The fault point right after the claim: the tick stays 'claimed' with no run; another
    scheduler takes it over and starts its run, once, even if the first one was only slow."""
    t = base_time()
    clock, events = ManualClock(t + timedelta(seconds=1)), Events()
    cid = await make_cron(rt, t, concurrencyPolicy="Allow")

    async def die() -> None:
        raise RuntimeError("scheduler killed after its claim")

    faults.hooks["cron.after_claim"] = die
    try:
        assert await fire_due(rt, clock, events) == 0
    finally:
        faults.hooks.pop("cron.after_claim")
    assert [k["decision"] for k in await ticks(rt, cid)] == ["claimed"]
    assert await cron_runs(rt, cid) == []
    # Not abandoned yet for a scheduler that waits the default 30 s ...
    assert await recover_ticks(rt, clock, events) == 0
    # ... taken over by one that does not wait, concurrently with two others.
    results = await asyncio.gather(*(recover_ticks(rt, clock, events, 0) for _ in range(3)))
    assert sum(results) == 1
    runs = await cron_runs(rt, cid)
    assert [r["run_id"] for r in runs] == [tick_run_id(str(cid), t)]
    assert runs[0]["tick"] == tick_key(str(cid), t)
    tick = (await ticks(rt, cid))[0]
    assert tick["decision"] == "started" and tick["run_id"] == runs[0]["run_id"]
    # The first scheduler was only slow and goes on: the tick's run id refuses a second run.
    async with rt.pool.connection() as conn:
        cron = await q.fetchone(conn, "get_cron", cron_id=cid)
    assert cron is not None
    assert await start_tick(rt, dict(cron), t, events) == 0
    assert len(await cron_runs(rt, cid)) == 1


async def test_a_recovered_tick_past_its_deadline_is_missed(rt: Runtime) -> None:
    t = base_time()
    clock, events = ManualClock(t + timedelta(seconds=1)), Events()
    cid = await make_cron(rt, t, concurrencyPolicy="Allow", startingDeadlineSeconds=30)

    async def die() -> None:
        raise RuntimeError("killed")

    faults.hooks["cron.after_claim"] = die
    try:
        await fire_due(rt, clock, events)
    finally:
        faults.hooks.pop("cron.after_claim")
    clock.set(t + timedelta(seconds=45))
    assert await recover_ticks(rt, clock, events, 0) == 0
    tick = (await ticks(rt, cid))[0]
    assert tick["decision"] == "missed" and "scheduler died" in tick["reason"]
    assert await cron_runs(rt, cid) == []


async def test_three_worker_processes_fire_each_tick_once_and_a_killed_one_loses_none(
    rt: Runtime, module_db: str, redis: Server, tmp_path: Path
) -> None:
    """Real processes on the offset clock: a worker that dies (exit 137) right after its
    claim, then three workers that recover its tick and fire the next ticks, each once."""
    t = base_time()
    offset = tmp_path / "clock"
    offset.write_text(f"@{(t + timedelta(seconds=1)).isoformat()}")
    cid = await make_cron(rt, t, concurrencyPolicy="Allow")
    env = {
        "CRON_SCHEDULER_SLEEP_TIME": "0.2",
        "BERTH_CRON_CLOCK_OFFSET_FILE": str(offset),
        "BERTH_CRON_TICK_RECOVER_SECONDS": "1",
    }
    doomed = launch(
        "worker",
        module_db,
        redis.uri,
        tmp_path,
        {**env, "BERTH_FAULTS": "cron.after_claim:exit"},
        wait=False,
    )
    assert await asyncio.wait_for(asyncio.to_thread(doomed.proc.wait), 60) == 137
    assert [k["decision"] for k in await ticks(rt, cid)] == ["claimed"]
    workers = [launch("worker", module_db, redis.uri, tmp_path, env) for _ in range(3)]
    try:
        for minute in range(1, 5):
            deadline = asyncio.get_running_loop().time() + 60
            while len(await cron_runs(rt, cid)) < minute:
                assert asyncio.get_running_loop().time() < deadline, await ticks(rt, cid)
                await asyncio.sleep(0.2)
            if minute < 4:
                offset.write_text(f"@{(t + timedelta(minutes=minute, seconds=1)).isoformat()}")
        await asyncio.sleep(2)  # time for a second fire of any tick, if one could happen
        runs = await cron_runs(rt, cid)
        expected = [tick_key(str(cid), t + timedelta(minutes=m)) for m in range(4)]
        assert sorted(r["tick"] for r in runs) == expected
        assert [k["decision"] for k in await ticks(rt, cid)] == ["started"] * 4
    finally:
        for w in workers:
            w.terminate()
