"""The example pipeline graph: one checkpoint and one store record per step."""

from __future__ import annotations

import asyncio
import socket

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from examples.agent import pipeline


def run(steps: int, seconds: float = 0.0) -> tuple[dict[str, object], InMemoryStore, int]:
    store, saver = InMemoryStore(), InMemorySaver()
    graph = pipeline.builder.compile(checkpointer=saver, store=store)
    config = {"configurable": {"thread_id": "t-1"}}
    out = asyncio.run(graph.ainvoke({"steps": steps, "seconds": seconds}, config))
    history = list(graph.get_state_history(config))
    return out, store, len(history)


def test_each_step_is_checkpointed_and_recorded_once() -> None:
    out, store, checkpoints = run(4)
    assert out["done"] == [1, 2, 3, 4]
    records = [i.value for i in store.search(pipeline.record_namespace("t-1"), limit=100)]
    assert sorted(r["step"] for r in records) == [1, 2, 3, 4]
    assert {r["host"] for r in records} == {socket.gethostname()}
    # input, then one checkpoint per step, plus the empty one before the input
    assert checkpoints == 4 + 2


@pytest.mark.parametrize(
    ("steps", "seconds", "message"),
    [(0, 0.0, "steps must be between 1"), (21, 0.0, "steps must be between 1"),
     (2, -1.0, "seconds must be between 0"), (2, 61.0, "seconds must be between 0")],
)  # fmt: skip
def test_bad_sizes_are_refused_naming_the_field(steps: int, seconds: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(steps, seconds)


def test_the_most_steps_fit_in_the_default_recursion_limit() -> None:
    out, _, _ = run(pipeline.MAX_STEPS)
    assert out["done"] == list(range(1, pipeline.MAX_STEPS + 1))
