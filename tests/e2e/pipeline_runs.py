"""What the example pipeline graph (examples/agent/pipeline.py) left behind: its final
state, the store's record of every step it ran and where, and its checkpoint history."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass

from langgraph_sdk.client import LangGraphClient


@dataclass
class StepRecord:
    step: int
    host: str


async def step_records(client: LangGraphClient, thread_id: str) -> list[StepRecord]:
    """Every execution of a step of the thread's pipeline runs (kept in Postgres)."""
    found = await client.store.search_items(("pipeline", thread_id), limit=1000)
    return [StepRecord(i["value"]["step"], i["value"]["host"]) for i in found["items"]]


async def wait_for_steps(
    client: LangGraphClient, thread_id: str, at_least: int
) -> list[StepRecord]:
    """The records once `at_least` steps ran (within a minute)."""
    records: list[StepRecord] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            while len(records) < at_least:
                await asyncio.sleep(0.3)
                records = await step_records(client, thread_id)
    assert len(records) >= at_least, f"only {len(records)} steps ran in 60 s"
    return records


def repeated_steps(records: list[StepRecord]) -> list[int]:
    return sorted(step for step, n in Counter(r.step for r in records).items() if n > 1)


async def checkpoint_steps(client: LangGraphClient, thread_id: str) -> list[int]:
    """The step number of each checkpoint of the thread, oldest first: a step that ran
    again after it was checkpointed would show up twice."""
    history = await client.threads.get_history(thread_id, limit=1000)
    return [int((h["metadata"] or {})["step"]) for h in reversed(history)]
