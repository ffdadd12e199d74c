"""Crons: scheduled runs on a thread and stateless, CRUD and bad inputs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

pytestmark = pytest.mark.integration

EVERY_SECOND = "* * * * * *"  # six fields: the last one is seconds


async def test_thread_cron_fires_runs_until_deleted(client: LangGraphClient) -> None:
    t = await client.threads.create()
    tid = t["thread_id"]
    cron = await client.crons.create_for_thread(
        tid, "factory", schedule=EVERY_SECOND, input={}, metadata={"job": "greet"}
    )
    assert cron["thread_id"] == tid and cron["enabled"] is True and cron["next_run_date"]
    for _ in range(100):
        runs = await client.runs.list(tid)
        if sum(r["status"] == "success" for r in runs) >= 2:
            break
        await asyncio.sleep(0.1)
    assert sum(r["status"] == "success" for r in runs) >= 2
    assert all(r["metadata"]["cron_id"] == cron["cron_id"] for r in runs)
    assert (await client.threads.get_state(tid))["values"]["greeting"].startswith("hello")

    found = await client.crons.search(thread_id=tid)
    assert [c["cron_id"] for c in found] == [cron["cron_id"]]
    assert await client.crons.count(thread_id=tid) == 1
    await client.crons.delete(cron["cron_id"])
    await asyncio.sleep(0.5)
    settled = len(await client.runs.list(tid, limit=100))
    await asyncio.sleep(1.5)
    assert len(await client.runs.list(tid, limit=100)) == settled  # no more fires


async def test_stateless_cron_and_patch(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    cron = await client.crons.create(
        "factory", schedule=EVERY_SECOND, input={}, on_run_completed="keep"
    )
    assert cron["thread_id"] is None and cron["on_run_completed"] == "keep"
    for _ in range(100):
        threads = await client.threads.search(metadata={"graph_id": "factory"}, limit=100)
        fired = [th for th in threads if (th["values"] or {}).get("greeting")]
        if fired:
            break
        await asyncio.sleep(0.1)
    assert fired, "the stateless cron never kept a thread"

    r = await http.patch(f"/runs/crons/{cron['cron_id']}", json={"enabled": False})
    assert r.status_code == 200
    assert r.json()["enabled"] is False and r.json()["next_run_date"] is None
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = await http.patch(f"/runs/crons/{cron['cron_id']}", json={"enabled": True, "end_time": past})
    assert r.json()["next_run_date"] is None  # already over
    r = await http.patch(
        f"/runs/crons/{cron['cron_id']}", json={"schedule": "0 9 * * 1", "end_time": None}
    )
    nxt = datetime.fromisoformat(r.json()["next_run_date"])
    assert nxt.weekday() == 0 and nxt.hour == 9
    assert (await http.get(f"/runs/crons/{cron['cron_id']}")).json()["schedule"] == "0 9 * * 1"
    await client.crons.delete(cron["cron_id"])


async def test_cron_bad_inputs(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    with pytest.raises(UnprocessableEntityError):
        await client.crons.create("factory", schedule="every day")
    with pytest.raises(UnprocessableEntityError):
        await client.crons.create("factory", schedule="0 9 * * *", timezone="Mars/Olympus")
    with pytest.raises(NotFoundError):
        await client.crons.create("no-such-graph", schedule="0 9 * * *")
    with pytest.raises(NotFoundError):
        await client.crons.create_for_thread(str(uuid.uuid4()), "factory", schedule="0 9 * * *")
    assert (await http.get(f"/runs/crons/{uuid.uuid4()}")).status_code == 404
    assert (await http.get("/runs/crons/not-a-uuid")).status_code == 422
    assert (await http.delete(f"/runs/crons/{uuid.uuid4()}")).status_code == 404
    r = await http.post("/runs/crons", json={"assistant_id": "factory"})
    assert r.status_code == 422
    r = await http.post(
        "/runs/crons",
        json={"assistant_id": "factory", "schedule": "0 9 * * *", "stream_mode": "bogus"},
    )
    assert r.status_code == 422
    r = await http.post("/runs/crons/search", json={"sort_by": "color"})
    assert r.status_code == 422
