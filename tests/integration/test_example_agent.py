"""The example agent served by berth-runtime on real Postgres and Redis, driven by langgraph-sdk.

This is the conversation a user has: ask, watch the stream, hit the approval pause, resume
with the reviewer's decision, read the answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langgraph_sdk import get_client

from examples.demo_runtime import (
    AGENT_CONFIG,
    RuntimeServer,
    converse,
    pending_interrupts,
    serve_berth_runtime,
)
from tests.support.servers import Server

pytestmark = pytest.mark.integration

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1002, it is broken"}]}


@pytest.fixture
def runtime(database_uri: str, redis: Server) -> Iterator[RuntimeServer]:
    with serve_berth_runtime(
        AGENT_CONFIG,
        database_uri,
        redis.uri,
        jobs_per_worker=2,
        env={"AGENT_MODEL_PROVIDER": "fake"},
    ) as server:
        yield server


async def collect(stream: Any) -> list[tuple[str, Any]]:
    return [(chunk.event, chunk.data) for chunk in [c async for c in stream]]


def messages_of(values: Any) -> list[dict[str, Any]]:
    assert isinstance(values, dict), values
    messages: list[dict[str, Any]] = values["messages"]
    return messages


async def test_refund_pauses_for_approval_then_completes_once(runtime: RuntimeServer) -> None:
    client = get_client(url=runtime.url)
    thread_id = (await client.threads.create())["thread_id"]

    events = await collect(
        client.runs.stream(thread_id, "agent", input=REFUND, stream_mode=["updates", "values"])
    )

    assert events[0][0] == "metadata"
    updates = [data for event, data in events if event == "updates"]
    asked = [m for u in updates for m in u.get("agent", {}).get("messages", [])]
    assert asked and asked[0]["tool_calls"][0]["name"] == "issue_refund"
    paused = [u["__interrupt__"] for u in updates if "__interrupt__" in u]
    assert paused and paused[0][0]["value"]["tool"] == "issue_refund"
    assert not any("tools" in u for u in updates)  # nothing ran before approval

    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    [pending] = pending_interrupts(thread)
    assert pending["value"]["args"]["order_id"] == "A-1002"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review"]

    events = await collect(
        client.runs.stream(
            thread_id,
            "agent",
            command={"resume": {"approved": True}},
            stream_mode=["updates", "values"],
        )
    )

    assert not [data for event, data in events if event == "error"]
    final = [data for event, data in events if event == "values"][-1]
    answer = messages_of(final)[-1]
    assert answer["type"] == "ai" and not answer.get("tool_calls")
    assert "Refund RF-A-1002 issued: $45.50" in answer["content"]

    thread = await client.threads.get(thread_id)
    assert thread["status"] == "idle"
    assert pending_interrupts(thread) == []
    state = await client.threads.get_state(thread_id)
    refunds = [m for m in messages_of(state["values"]) if m.get("name") == "issue_refund"]
    assert len(refunds) == 1 and refunds[0]["type"] == "tool"
    assert refunds[0]["content"] in answer["content"]
    runs = await client.runs.list(thread_id)
    assert sorted(r["status"] for r in runs) == ["success", "success"]


async def test_declined_refund_is_reported_not_executed(runtime: RuntimeServer) -> None:
    client = get_client(url=runtime.url)
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "agent", input=REFUND)
    assert (await client.threads.get(thread_id))["status"] == "interrupted"

    values = await client.runs.wait(
        thread_id, "agent", command={"resume": {"approved": False, "reason": "no photo"}}
    )

    contents = [m["content"] for m in messages_of(values)]
    assert not any("RF-A-1002" in c for c in contents)
    assert "the reviewer declined (no photo)" in contents[-1]
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_plain_tool_calls_need_no_approval(runtime: RuntimeServer) -> None:
    client = get_client(url=runtime.url)
    thread_id = (await client.threads.create())["thread_id"]

    values = await client.runs.wait(
        thread_id,
        "agent",
        input={"messages": [{"role": "user", "content": "What is 12 * (3 + 4)?"}]},
    )

    assert messages_of(values)[-1]["content"] == "Worked out: 12 * (3 + 4) = 84"
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_the_demo_conversation_runs_against_berth(runtime: RuntimeServer) -> None:
    answer = await converse(runtime.url)
    assert "Refund RF-A-1002 issued" in answer
