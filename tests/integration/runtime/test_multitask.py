"""Double-texting strategies and cancellation, with both runs' statuses and the thread state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

pytestmark = pytest.mark.integration

ALL = ["s1", "s2", "s3", "s4", "s5"]


def steps_config(side_effects: Path, sleep: float = 0.4) -> dict[str, Any]:
    return {"configurable": {"side_effects": str(side_effects), "sleep": sleep}}


def executed(side_effects: Path, run_id: str) -> list[str]:
    if not side_effects.exists():
        return []
    lines = side_effects.read_text().splitlines()
    return [line.split(":")[1] for line in lines if line.startswith(run_id + ":")]


async def wait_for_step(side_effects: Path, run_id: str, step: str, within: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while step not in executed(side_effects, run_id):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"run {run_id} never reached {step}")
        await asyncio.sleep(0.05)


async def test_reject_answers_409_and_keeps_first_run(
    client: LangGraphClient, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.log"
    t = await client.threads.create()
    first = await client.runs.create(
        t["thread_id"], "steps", input={"done": []}, config=steps_config(fx, 0.2)
    )
    with pytest.raises(ConflictError):
        await client.runs.create(
            t["thread_id"], "steps", input={"done": []}, multitask_strategy="reject"
        )
    await client.runs.join(t["thread_id"], first["run_id"])
    runs = await client.runs.list(t["thread_id"])
    assert [(r["run_id"], r["status"]) for r in runs] == [(first["run_id"], "success")]
    assert (await client.threads.get_state(t["thread_id"]))["values"]["done"] == ALL


async def test_enqueue_runs_one_after_the_other(client: LangGraphClient, tmp_path: Path) -> None:
    fx = tmp_path / "fx.log"
    t = await client.threads.create()
    first = await client.runs.create(
        t["thread_id"], "steps", input={"done": []}, config=steps_config(fx, 0.1)
    )
    second = await client.runs.create(
        t["thread_id"], "steps", input={"done": []}, config=steps_config(fx, 0.1)
    )
    assert second["multitask_strategy"] == "enqueue"
    assert (await client.threads.get(t["thread_id"]))["status"] == "busy"
    await client.runs.join(t["thread_id"], second["run_id"])
    statuses = {r["run_id"]: r["status"] for r in await client.runs.list(t["thread_id"])}
    assert statuses == {first["run_id"]: "success", second["run_id"]: "success"}
    order = [line.split(":")[0] for line in fx.read_text().splitlines()]
    assert order == [first["run_id"]] * 5 + [second["run_id"]] * 5  # never interleaved
    assert (await client.threads.get_state(t["thread_id"]))["values"]["done"] == ALL + ALL
    assert (await client.threads.get(t["thread_id"]))["status"] == "idle"


async def test_interrupt_stops_first_run_and_keeps_its_progress(
    client: LangGraphClient, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.log"
    t = await client.threads.create()
    first = await client.runs.create(
        t["thread_id"], "steps", input={"done": []}, config=steps_config(fx)
    )
    await wait_for_step(fx, first["run_id"], "s2")
    second = await client.runs.create(
        t["thread_id"],
        "steps",
        input={"done": []},
        multitask_strategy="interrupt",
        config=steps_config(fx, 0.0),
    )
    out = await client.runs.join(t["thread_id"], second["run_id"])
    first_after = await client.runs.get(t["thread_id"], first["run_id"])
    assert first_after["status"] == "interrupted"
    assert (await client.runs.get(t["thread_id"], second["run_id"]))["status"] == "success"
    ran_first = executed(fx, first["run_id"])
    assert 2 <= len(ran_first) < 5
    # what the first run completed is still in the thread, followed by the second run
    kept = out["done"][: len(out["done"]) - 5]
    assert kept == ALL[: len(kept)] and len(kept) >= 1
    assert out["done"][-5:] == ALL
    assert (await client.threads.get(t["thread_id"]))["status"] == "idle"


async def test_rollback_deletes_first_run_and_its_writes(
    client: LangGraphClient, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.log"
    t = await client.threads.create()
    first = await client.runs.create(
        t["thread_id"], "steps", input={"done": []}, config=steps_config(fx)
    )
    await wait_for_step(fx, first["run_id"], "s2")
    second = await client.runs.create(
        t["thread_id"],
        "steps",
        input={"done": []},
        multitask_strategy="rollback",
        config=steps_config(fx, 0.0),
    )
    out = await client.runs.join(t["thread_id"], second["run_id"])
    assert out["done"] == ALL  # nothing of the first run survives
    with pytest.raises(NotFoundError):
        await client.runs.get(t["thread_id"], first["run_id"])
    runs = await client.runs.list(t["thread_id"])
    assert [(r["run_id"], r["status"]) for r in runs] == [(second["run_id"], "success")]
    history = await client.threads.get_history(t["thread_id"], limit=50)
    assert all(h["metadata"].get("run_id") != first["run_id"] for h in history)


async def test_cancel_interrupt_and_rollback(client: LangGraphClient, tmp_path: Path) -> None:
    fx = tmp_path / "fx.log"
    t = await client.threads.create()
    tid = t["thread_id"]
    run = await client.runs.create(tid, "steps", input={"done": []}, config=steps_config(fx))
    await wait_for_step(fx, run["run_id"], "s2")
    await client.runs.cancel(tid, run["run_id"], wait=True, action="interrupt")
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    kept = (await client.threads.get_state(tid))["values"]["done"]
    assert kept and kept == ALL[: len(kept)] and len(kept) < 5
    assert (await client.threads.get(tid))["status"] in ("idle", "interrupted")
    with pytest.raises(ConflictError):
        await client.runs.cancel(tid, run["run_id"])  # already over

    run2 = await client.runs.create(tid, "steps", input={"done": []}, config=steps_config(fx))
    await wait_for_step(fx, run2["run_id"], "s2")
    await client.runs.cancel(tid, run2["run_id"], wait=True, action="rollback")
    with pytest.raises(NotFoundError):
        await client.runs.get(tid, run2["run_id"])
    assert (await client.threads.get_state(tid))["values"]["done"] == kept
    assert [r["run_id"] for r in await client.runs.list(tid)] == [run["run_id"]]


async def test_cancel_pending_run(client: LangGraphClient, tmp_path: Path) -> None:
    fx = tmp_path / "fx.log"
    t = await client.threads.create()
    tid = t["thread_id"]
    first = await client.runs.create(tid, "steps", input={"done": []}, config=steps_config(fx, 0.2))
    queued = await client.runs.create(
        tid, "steps", input={"done": []}, config=steps_config(fx, 0.0)
    )
    assert (await client.runs.get(tid, queued["run_id"]))["status"] == "pending"
    await client.runs.cancel(tid, queued["run_id"])
    assert (await client.runs.get(tid, queued["run_id"]))["status"] == "interrupted"
    await client.runs.join(tid, first["run_id"])
    assert executed(fx, queued["run_id"]) == []
    assert (await client.threads.get_state(tid))["values"]["done"] == ALL
    assert (await client.threads.get(tid))["status"] == "idle"
