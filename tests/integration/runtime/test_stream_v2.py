"""Protocol v2 streaming (`/threads/{tid}/stream/events`, `/threads/{tid}/commands`) with
langgraph-sdk's `client.threads.stream()`, plus `GET /threads/{tid}/storage` and the
`state_update` thread-stream mode."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

pytestmark = pytest.mark.integration

CHAT = {"messages": [{"role": "user", "content": "add 2 and 3"}]}


async def _events(
    http: httpx.AsyncClient, thread_id: str, body: dict[str, Any], until: str = "completed"
) -> list[dict[str, Any]]:
    """Protocol events of the thread's stream, up to the root lifecycle event `until`."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        async with http.stream("POST", f"/threads/{thread_id}/stream/events", json=body) as r:
            assert r.status_code == 200, await r.aread()
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                ev = json.loads(line[6:])
                out.append(ev)
                data = ev["params"]["data"]
                root = ev["method"] == "lifecycle" and not ev["params"]["namespace"]
                if root and data["event"] in (until, "failed"):
                    return out
    return out


async def test_sdk_thread_stream_runs_and_reads_output(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="agent") as thread:
        started = await thread.run.start(input=CHAT)
        assert uuid.UUID(started["run_id"])
        output = await thread.output.with_timeout(60)
    assert output["messages"][-1]["content"] == "The sum is 5."
    run = await client.runs.get(thread.thread_id, started["run_id"])
    assert run["status"] == "success"


async def test_sdk_subscription_sees_values_and_lifecycle(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="factory") as thread:
        await thread.run.start(input={"who": "v2"})
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            async for ev in thread.subscribe(["values", "lifecycle"]):
                seen.append(ev)
                if ev["method"] == "lifecycle" and ev["params"]["data"]["event"] == "completed":
                    break
    methods = [e["method"] for e in seen]
    assert methods[0] == "lifecycle" and seen[0]["params"]["data"]["event"] == "running"
    finals = [e["params"]["data"] for e in seen if e["method"] == "values"]
    assert finals[-1] == {"greeting": "hello from langgraph.json", "who": "v2"}
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_events_filter_replay_since_and_messages(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    t = await client.threads.create()
    tid = t["thread_id"]
    r = await http.post(
        f"/threads/{tid}/commands",
        json={"id": 1, "method": "run.start", "params": {"assistant_id": "agent", "input": CHAT}},
    )
    assert r.status_code == 200 and r.json()["type"] == "success" and r.json()["id"] == 1
    everything = await _events(
        http, tid, {"channels": ["values", "updates", "messages", "lifecycle"]}
    )
    methods = {e["method"] for e in everything}
    assert methods == {"values", "updates", "messages", "lifecycle"}
    # the answer streams token by token as one AI message's text block
    msg = [e["params"]["data"] for e in everything if e["method"] == "messages"]
    deltas = [m["delta"]["text"] for m in msg if m["event"] == "content-block-delta"]
    assert "".join(deltas).endswith("The sum is 5.") and len(deltas) > 1
    finished = [m["content"]["text"] for m in msg if m["event"] == "content-block-finish"]
    assert finished[-1] == "The sum is 5."
    nodes = [e["params"]["data"]["node"] for e in everything if e["method"] == "updates"]
    assert nodes == ["model", "tools", "model"]

    # `since`: exactly the events after that seq, no gap, no duplicate
    cut = everything[len(everything) // 2]["seq"]
    rest = await _events(
        http, tid, {"channels": ["values", "updates", "messages", "lifecycle"], "since": cut}
    )
    assert [e["event_id"] for e in rest] == [e["event_id"] for e in everything if e["seq"] > cut]
    # channel filter
    only_updates = await _events(http, tid, {"channels": ["updates", "lifecycle"]})
    assert {e["method"] for e in only_updates} == {"updates", "lifecycle"}


async def test_interrupt_and_respond(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    tid = str(uuid.uuid4())  # the thread is created by run.start, as the SDK expects
    start = {"assistant_id": "hitl", "input": {"topic": "v2"}}
    r = await http.post(
        f"/threads/{tid}/commands", json={"id": 1, "method": "run.start", "params": start}
    )
    assert r.status_code == 200, r.text
    evs = await _events(http, tid, {"channels": ["input", "lifecycle"]}, until="interrupted")
    [req] = [e["params"]["data"] for e in evs if e["method"] == "input.requested"]
    assert evs[-1]["params"]["data"]["event"] == "interrupted"

    cmd = {"interrupt_id": req["interrupt_id"], "namespace": [], "response": "ok"}
    r = await http.post(
        f"/threads/{tid}/commands", json={"id": 2, "method": "input.respond", "params": cmd}
    )
    assert r.status_code == 200, r.text
    await client.runs.join(tid, r.json()["result"]["run_id"])
    state = await client.threads.get_state(tid)
    assert state["next"] == [] and state["values"]["log"][0] == "draft:v2"

    r = await http.post(f"/threads/{tid}/commands", json={"id": 3, "method": "agent.getTree"})
    assert r.json()["result"]["tree"] == {
        "namespace": [],
        "status": "completed",
        "graph_name": "hitl",
    }


async def test_bad_v2_requests_are_4xx(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    t = await client.threads.create()
    tid = t["thread_id"]
    url = f"/threads/{tid}/stream/events"
    for body in (
        {},
        {"channels": []},
        {"channels": ["nope"]},
        {"channels": ["values"], "since": -1},
    ):
        r = await http.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
    r = await http.post(url, content=b"{x", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    r = await http.post(f"/threads/{uuid.uuid4()}/stream/events", json={"channels": ["values"]})
    assert r.status_code == 404

    cmd = f"/threads/{tid}/commands"

    async def error(body: Any) -> tuple[int, str]:
        r = await http.post(cmd, json=body)
        assert 400 <= r.status_code < 500, r.text
        return r.status_code, r.json().get("error") or r.json().get("detail")

    assert (await error({"method": "run.start"}))[0] == 422  # no id
    assert await error({"id": 1, "method": "nope"}) == (400, "unknown_command")
    assert await error({"id": 1, "method": "subscription.subscribe"}) == (400, "not_supported")
    assert await error({"id": 1, "method": "run.start", "params": {}}) == (400, "invalid_argument")
    unknown_assistant = {"id": 1, "method": "run.start", "params": {"assistant_id": "nope"}}
    assert await error(unknown_assistant) == (404, "no_such_run")
    respond = {"id": 1, "method": "input.respond", "params": {"interrupt_id": "x", "response": 1}}
    assert (await error(respond))[0] == 404


async def test_thread_storage(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    t = await client.threads.create()
    empty = (await http.get(f"/threads/{t['thread_id']}/storage")).json()
    assert empty["total_bytes"] == 0 and empty["checkpoints"]["count"] == 0
    await client.runs.wait(t["thread_id"], "agent", input=CHAT)
    used = (await http.get(f"/threads/{t['thread_id']}/storage")).json()
    assert used["thread_id"] == t["thread_id"] and used["checkpoints"]["count"] > 0
    parts = used["checkpoints"]["bytes"] + used["channel_values"]["bytes"]
    assert used["total_bytes"] == parts + used["pending_writes"]["bytes"] > 0
    assert (await http.get(f"/threads/{uuid.uuid4()}/storage")).status_code == 404
    assert (await http.get("/threads/not-a-uuid/storage")).status_code == 422


async def test_state_update_thread_stream_mode(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    t = await client.threads.create(graph_id="factory")
    tid = t["thread_id"]
    params = {"stream_mode": "state_update"}
    async with (
        asyncio.timeout(90),
        http.stream("GET", f"/threads/{tid}/stream", params=params) as r,
    ):
        # Headers received: the server has its baseline, so both changes below are updates.
        assert r.status_code == 200
        lines = r.aiter_lines()

        async def next_update() -> dict[str, Any]:
            event = None
            async for line in lines:
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "state_update":
                    data: dict[str, Any] = json.loads(line[6:])
                    return data
            raise AssertionError("stream ended")

        await client.threads.update_state(tid, {"who": "manual"})
        manual = await next_update()
        assert manual["values"]["who"] == "manual" and manual["thread_id"] == tid
        await client.runs.wait(tid, "factory", input={"who": "run"})
        after_run = await next_update()
        assert after_run["values"] == {"who": "run", "greeting": "hello from langgraph.json"}


async def test_sdk_interrupt_and_respond(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="hitl") as thread:
        await thread.run.start(input={"topic": "sdk"})
        async with asyncio.timeout(60):
            async for ev in thread.subscribe(["input", "lifecycle"]):
                if ev["method"] == "lifecycle" and ev["params"]["data"]["event"] == "interrupted":
                    break
            for _ in range(1200):  # the SDK's own lifecycle watcher sees it too, a bit later
                if thread.interrupted:
                    break
                await asyncio.sleep(0.05)
        [pending] = thread.interrupts
        assert pending["value"] == {"question": "approve sdk?"}
        await thread.run.respond("yes")
        output = await thread.output.with_timeout(60)
    assert output["log"] == ["draft:sdk", "asked:yes", "published:yes"]
