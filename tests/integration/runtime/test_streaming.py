"""Streaming as langgraph-sdk sees it: every mode, subgraphs, resumption, API process death.

The graph (tests/integration/graphs/streaming.py) streams its answer from a real
`BaseChatModel` whose `_astream` yields one chunk per word, emits custom events and calls a
subgraph, so each stream mode has something real to carry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamPart

from tests.integration.graphs.streaming import DEFAULT_REPLY, tokens
from tests.integration.runtime.conftest import launch, wait_ready
from tests.support.servers import Server

pytestmark = pytest.mark.integration

CHAT_INPUT = {"messages": [{"role": "user", "content": "hi"}]}
REPLY_TOKENS = tokens(DEFAULT_REPLY)
LONG_REPLY = " ".join(f"w{i}" for i in range(40))


def slow(delay: float, reply: str = DEFAULT_REPLY) -> dict[str, Any]:
    return {"configurable": {"token_delay": delay, "reply": reply}}


async def collect(parts: AsyncIterator[StreamPart]) -> list[StreamPart]:
    return [p async for p in parts]


def of(parts: list[StreamPart], event: str) -> list[Any]:
    return [p.data for p in parts if p.event == event]


def token_texts(parts: list[StreamPart], event: str = "messages") -> list[str]:
    """Contents of the AI chunks of `messages-tuple` events, in order."""
    out = []
    for chunk, meta in of(parts, event):
        assert meta["langgraph_node"] == "model", meta
        if chunk["content"]:
            out.append(chunk["content"])
    return out


def check_values(parts: list[StreamPart]) -> None:
    values = of(parts, "values")
    assert values[0]["messages"][0]["content"] == "hi"
    final = values[-1]
    assert [m["type"] for m in final["messages"]] == ["human", "ai"]
    assert final["messages"][1]["content"] == DEFAULT_REPLY
    assert final["trail"] == ["model", "finish"] and final["inner"] == "done"


def check_updates(parts: list[StreamPart]) -> None:
    updates = of(parts, "updates")
    assert [next(iter(u)) for u in updates] == ["model", "child", "finish"]
    assert updates[0]["model"]["messages"][0]["content"] == DEFAULT_REPLY
    assert updates[1:] == [{"child": {"inner": "done"}}, {"finish": {"trail": ["finish"]}}]


def check_messages_tuple(parts: list[StreamPart]) -> None:
    assert token_texts(parts) == REPLY_TOKENS  # one event per token, none merged or lost
    chunk, meta = of(parts, "messages")[0]
    assert chunk["type"] == "AIMessageChunk" and meta["graph_id"] == "streaming"


def check_messages(parts: list[StreamPart]) -> None:
    [meta] = of(parts, "messages/metadata")
    [mid] = meta
    assert meta[mid]["metadata"]["langgraph_node"] == "model"
    partial = [msgs[0]["content"] for msgs in of(parts, "messages/partial")]
    # each partial is the message so far: one more token every time
    grown = ["".join(REPLY_TOKENS[: i + 1]) for i in range(len(REPLY_TOKENS))]
    assert [p for i, p in enumerate(partial) if i == 0 or p != partial[i - 1]] == grown
    assert all(msgs[0]["id"] == mid for msgs in of(parts, "messages/partial"))


def check_custom(parts: list[StreamPart]) -> None:
    # the subgraph's writer output stays in the subgraph without stream_subgraphs
    assert of(parts, "custom") == [{"progress": 0}, {"progress": 1}, {"progress": 2}]


def check_debug(parts: list[StreamPart]) -> None:
    debug = of(parts, "debug")
    kinds = [d["type"] for d in debug]
    assert set(kinds) == {"checkpoint", "task", "task_result"}
    tasks = [d["payload"]["name"] for d in debug if d["type"] == "task"]
    assert tasks == ["model", "child", "finish"]
    assert debug[-1]["type"] == "checkpoint" and debug[-1]["payload"]["next"] == []


def check_tasks(parts: list[StreamPart]) -> None:
    tasks = of(parts, "tasks")
    started = [t["name"] for t in tasks if "input" in t]
    finished = [t for t in tasks if "result" in t]
    assert started == ["model", "child", "finish"]
    assert [t["name"] for t in finished] == started
    assert all(t["error"] is None for t in finished)
    assert finished[0]["result"]["messages"][0]["content"] == DEFAULT_REPLY


def check_checkpoints(parts: list[StreamPart]) -> None:
    cps = of(parts, "checkpoints")
    assert [c["next"] for c in cps] == [["__start__"], ["model"], ["child"], ["finish"], []]
    ids = [c["config"]["configurable"]["checkpoint_id"] for c in cps]
    assert len(set(ids)) == len(ids)
    assert cps[-1]["values"]["trail"] == ["model", "finish"]


def check_events(parts: list[StreamPart]) -> None:
    events = of(parts, "events")
    streamed = [
        e["data"]["chunk"]["content"]
        for e in events
        if e["event"] == "on_chat_model_stream" and e["data"]["chunk"]["content"]
    ]
    assert streamed == REPLY_TOKENS
    kinds = {e["event"] for e in events}
    assert {"on_chain_start", "on_chain_end", "on_chat_model_start", "on_chat_model_end"} <= kinds
    assert all("run_id" in e and "name" in e for e in events)


CHECKS = {
    "values": check_values,
    "updates": check_updates,
    "messages-tuple": check_messages_tuple,
    "messages": check_messages,
    "custom": check_custom,
    "debug": check_debug,
    "tasks": check_tasks,
    "checkpoints": check_checkpoints,
    "events": check_events,
}
EVENT_OF = {"messages-tuple": "messages", "messages": "messages/partial"}


@pytest.mark.parametrize("mode", list(CHECKS))
async def test_each_stream_mode(client: LangGraphClient, mode: str) -> None:
    t = await client.threads.create()
    parts = await collect(
        client.runs.stream(t["thread_id"], "streaming", input=CHAT_INPUT, stream_mode=mode)
    )
    assert parts[0].event == "metadata" and parts[-1].event == "end", [p.event for p in parts]
    assert parts[-1].data["status"] == "success"
    names = {p.event.split("/")[0] for p in parts[1:-1]}
    assert names == {EVENT_OF.get(mode, mode).split("/")[0]}, names  # only what was asked
    assert all(p.id for p in parts[1:]), "every run event carries a resumable id"
    CHECKS[mode](parts)


async def test_tokens_reach_the_client_while_the_model_is_still_generating(
    client: LangGraphClient,
) -> None:
    delay = 0.15
    seen: list[tuple[float, str]] = []
    async for p in client.runs.stream(
        None, "streaming", input=CHAT_INPUT, stream_mode="messages-tuple", config=slow(delay)
    ):
        if p.event == "messages" and p.data[0]["content"]:
            seen.append((time.monotonic(), p.data[0]["content"]))
    assert [tok for _, tok in seen] == REPLY_TOKENS
    # Buffered delivery would land all tokens at once; streamed ones arrive spread out
    # over roughly the time the model took to produce them.
    spread = seen[-1][0] - seen[0][0]
    assert spread >= 0.5 * delay * (len(REPLY_TOKENS) - 1), spread


async def test_several_modes_at_once_in_order(client: LangGraphClient) -> None:
    modes = ["values", "updates", "messages-tuple", "custom", "tasks"]
    parts = await collect(
        client.runs.stream(None, "streaming", input=CHAT_INPUT, stream_mode=modes)
    )
    names = [p.event for p in parts]
    assert names[0] == "metadata" and names[-1] == "end"
    assert set(names[1:-1]) == {"values", "updates", "messages", "custom", "tasks"}
    check_values(parts)
    check_updates(parts)
    check_messages_tuple(parts)
    check_custom(parts)
    check_tasks(parts)
    # the model's tokens come before the model node's update, which comes before `finish`'s
    last_token = max(i for i, n in enumerate(names) if n == "messages")
    model_update = next(i for i, p in enumerate(parts) if p.event == "updates")
    first_custom = names.index("custom")
    assert last_token < model_update < first_custom


async def test_stream_subgraphs_namespaces_events(client: LangGraphClient) -> None:
    modes = ["updates", "messages-tuple", "custom"]
    flat = await collect(
        client.runs.stream(None, "streaming_nested", input=CHAT_INPUT, stream_mode=modes)
    )
    assert not [p.event for p in flat if "|" in p.event]
    # Without stream_subgraphs the root sees the inner model's message once, whole.
    [(whole, meta)] = of(flat, "messages")
    assert whole["content"] == DEFAULT_REPLY and meta["langgraph_node"] == "agent"
    assert [next(iter(u)) for u in of(flat, "updates")] == ["agent"]
    assert of(flat, "custom") == []  # written inside subgraphs only

    deep = await collect(
        client.runs.stream(
            None, "streaming_nested", input=CHAT_INPUT, stream_mode=modes, stream_subgraphs=True
        )
    )
    names = [p.event for p in deep]
    by_ns: dict[tuple[str, ...], list[StreamPart]] = {}
    for p in deep:
        _mode, *ns = p.event.split("|")
        by_ns.setdefault(tuple(n.split(":")[0] for n in ns), []).append(p)
        for n in ns:
            node, _, task_id = n.partition(":")
            assert node in ("agent", "child") and len(task_id) == 36, p.event
    assert set(by_ns) == {(), ("agent",), ("agent", "child")}, names
    agent_level = by_ns[("agent",)]
    tokens_streamed = [d[0]["content"] for d in of(agent_level, _first(agent_level, "messages"))]
    assert [t for t in tokens_streamed if t] == REPLY_TOKENS
    updates = [p.data for p in agent_level if p.event.startswith("updates|")]
    assert [next(iter(u)) for u in updates] == ["model", "child", "finish"]
    custom = [p.data for p in agent_level if p.event.startswith("custom|")]
    assert custom == [{"progress": 0}, {"progress": 1}, {"progress": 2}]
    inner = by_ns[("agent", "child")]
    assert {p.event.split("|")[0] for p in inner} == {"updates", "custom"}
    assert [p.data for p in inner if p.event.startswith("custom|")] == [{"progress": "inner"}]
    assert next(p.data for p in by_ns[()] if p.event == "updates").keys() == {"agent"}


def _first(parts: list[StreamPart], mode: str) -> str:
    return next(p.event for p in parts if p.event.split("|")[0] == mode)


def resumable(parts: list[StreamPart]) -> list[tuple[str | None, str, Any]]:
    return [(p.id, p.event, p.data) for p in parts if p.id]


async def read_until(stream: AsyncIterator[StreamPart], n_tokens: int) -> list[StreamPart]:
    """Parts of a live stream up to the n-th token (the caller then drops the connection)."""
    got: list[StreamPart] = []
    async for p in stream:
        got.append(p)
        if sum(1 for g in got if g.event == "messages") >= n_tokens:
            return got
    raise AssertionError(f"stream ended before {n_tokens} tokens: {[g.event for g in got]}")


async def test_rejoin_with_last_event_id_has_no_gap_and_no_duplicate(
    client: LangGraphClient,
) -> None:
    t = await client.threads.create()
    modes = ["values", "messages-tuple", "updates"]
    stream = client.runs.stream(
        t["thread_id"],
        "streaming",
        input=CHAT_INPUT,
        stream_mode=modes,
        config=slow(0.1, LONG_REPLY),
    )
    before = await read_until(stream, 4)
    await stream.aclose()  # the client drops the connection mid-answer
    run_id = before[0].data["run_id"]
    assert (await client.runs.get(t["thread_id"], run_id))["status"] == "running"
    last = before[-1].id
    assert last
    after = await collect(
        client.runs.join_stream(t["thread_id"], run_id, stream_mode=modes, last_event_id=last)
    )
    assert after[-1].event == "end" and after[-1].data["status"] == "success"
    full = await collect(client.runs.join_stream(t["thread_id"], run_id, stream_mode=modes))
    assert resumable(before) + resumable(after) == resumable(full)
    assert token_texts(before + after) == tokens(LONG_REPLY)
    # a client that already got `end` and reconnects gets nothing twice
    end_id = full[-1].id
    assert full[-1].event == "end" and end_id
    assert (
        await collect(client.runs.join_stream(t["thread_id"], run_id, last_event_id=end_id)) == []
    )
    # useStream asks for a replay from the start with Last-Event-ID -1
    replay = await collect(client.runs.join_stream(t["thread_id"], run_id, last_event_id="-1"))
    assert resumable(replay) == resumable(full)


async def test_rejoin_on_another_api_process_after_the_serving_one_was_killed(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    api1 = launch("api", database_uri, redis.uri, tmp_path, wait=False)
    api2 = launch("api", database_uri, redis.uri, tmp_path, wait=False)
    worker = launch("worker", database_uri, redis.uri, tmp_path, wait=False)
    procs = [api1, api2, worker]
    c1, c2 = get_client(url=api1.url), get_client(url=api2.url)
    try:
        for rp in procs:
            await asyncio.to_thread(wait_ready, rp)
        t = await c1.threads.create()
        modes = ["messages-tuple", "updates", "custom"]
        stream = c1.runs.stream(
            t["thread_id"],
            "streaming",
            input=CHAT_INPUT,
            stream_mode=modes,
            config=slow(0.1, LONG_REPLY),
        )
        before = await read_until(stream, 6)
        api1.kill()  # SIGKILL the API process that serves the stream
        await stream.aclose()
        run_id = before[0].data["run_id"]
        assert (await c2.runs.get(t["thread_id"], run_id))["status"] == "running"
        after = await collect(
            c2.runs.join_stream(
                t["thread_id"], run_id, stream_mode=modes, last_event_id=before[-1].id
            )
        )
        assert after[-1].event == "end" and after[-1].data["status"] == "success"
        full = await collect(c2.runs.join_stream(t["thread_id"], run_id, stream_mode=modes))
        assert resumable(before) + resumable(after) == resumable(full)
        assert "".join(token_texts(before + after)) == LONG_REPLY
        assert len(token_texts(before)) == 6
        state = await c2.threads.get_state(t["thread_id"])
        assert state["values"]["messages"][-1]["content"] == LONG_REPLY
    finally:
        await c1.aclose()
        await c2.aclose()
        for rp in procs:
            if rp.alive():
                rp.terminate()


async def test_join_after_the_replay_buffer_expired_ends_with_the_final_state(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    ttl = 1
    rp = launch("serve", database_uri, redis.uri, tmp_path, {"RESUMABLE_STREAM_TTL_SECONDS": "1"})
    client = get_client(url=rp.url)
    r = aioredis.Redis.from_url(redis.uri)
    try:
        t = await client.threads.create()
        parts = await collect(
            client.runs.stream(
                t["thread_id"], "streaming", input=CHAT_INPUT, stream_mode="messages-tuple"
            )
        )
        run_id = parts[0].data["run_id"]
        cut = parts[3].id
        assert cut
        # The buffer existed (`cut` is one of its ids); wait until Redis dropped it.
        pattern = f"berth:*:run:{run_id}:events"
        deadline = time.monotonic() + 30
        while [k async for k in r.scan_iter(match=pattern)]:
            assert time.monotonic() < deadline, "the stream never expired"
            await asyncio.sleep(ttl / 5)
        state = await client.threads.get_state(t["thread_id"])
        for last_event_id in (cut, None):
            late = await collect(
                client.runs.join_stream(t["thread_id"], run_id, last_event_id=last_event_id)
            )
            assert [p.event for p in late] == ["values", "end"], late
            assert late[0].data == state["values"]
            assert late[1].data == {"run_id": run_id, "status": "success"}
    finally:
        await r.aclose()
        await client.aclose()
        rp.terminate()
