"""Runs: background, wait, stream, join, join-stream resume, HITL, interrupt_before, time travel."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import BadRequestError, NotFoundError, UnprocessableEntityError

pytestmark = pytest.mark.integration

ALL_STEPS = ["s1", "s2", "s3", "s4", "s5"]
AGENT_INPUT = {"messages": [{"role": "user", "content": "what is 2 + 3?"}]}


def ai_text(values: dict[str, Any]) -> str:
    return str(values["messages"][-1]["content"])


async def test_background_run_join_get_list(client: LangGraphClient) -> None:
    t = await client.threads.create()
    run = await client.runs.create(t["thread_id"], "agent", input=AGENT_INPUT)
    assert run["status"] in ("pending", "running") and run["thread_id"] == t["thread_id"]
    assert run["multitask_strategy"] == "enqueue"
    final = await client.runs.join(t["thread_id"], run["run_id"])
    assert ai_text(final) == "The sum is 5."
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "tool", "ai"]
    got = await client.runs.get(t["thread_id"], run["run_id"])
    assert got["status"] == "success"
    listed = await client.runs.list(t["thread_id"])
    assert [r["run_id"] for r in listed] == [run["run_id"]]
    assert await client.runs.list(t["thread_id"], status="error") == []
    thread = await client.threads.get(t["thread_id"])
    assert thread["status"] == "idle" and ai_text(thread["values"]) == "The sum is 5."
    assert thread["metadata"]["graph_id"] == "agent"


async def test_wait_stateful_and_stateless(client: LangGraphClient) -> None:
    t = await client.threads.create()
    out = await client.runs.wait(t["thread_id"], "agent", input=AGENT_INPUT)
    assert ai_text(out) == "The sum is 5."
    # a second turn continues the same conversation
    out2 = await client.runs.wait(t["thread_id"], "agent", input=AGENT_INPUT)
    assert len(out2["messages"]) == 8
    stateless = await client.runs.wait(None, "agent", input=AGENT_INPUT)
    assert ai_text(stateless) == "The sum is 5." and len(stateless["messages"]) == 4


async def test_factory_graph_gets_config_and_env(client: LangGraphClient) -> None:
    out = await client.runs.wait(
        None, "factory", input={}, config={"configurable": {"suffix": "!"}}
    )
    assert out == {"greeting": "hello from langgraph.json!"}


async def test_runs_follow_assistant_changes(client: LangGraphClient) -> None:
    """The API keeps assistants it has read; a change or a delete must still reach the next
    run at once (stateless, and on a thread that already ran)."""
    assistant = await client.assistants.create("factory", config={"configurable": {"suffix": "!"}})
    aid = assistant["assistant_id"]
    thread = await client.threads.create()
    for thread_id in (None, thread["thread_id"]):
        out = await client.runs.wait(thread_id, aid, input={})
        assert out["greeting"] == "hello from langgraph.json!"
    await client.assistants.update(aid, config={"configurable": {"suffix": "?"}})
    for thread_id in (None, thread["thread_id"]):
        out = await client.runs.wait(thread_id, aid, input={})
        assert out["greeting"] == "hello from langgraph.json?"
    await client.assistants.delete(aid)
    for thread_id in (None, thread["thread_id"]):
        with pytest.raises(httpx.HTTPStatusError) as gone:
            await client.runs.wait(thread_id, aid, input={})
        assert gone.value.response.status_code == 404


async def test_wait_and_join_answer_small_and_large_results(client: LangGraphClient) -> None:
    """A result up to 64 KiB comes back from the run's event stream, a larger one from
    Postgres; both are the whole result, and no stream shows the result entry itself."""
    for size in (10, 70_000):
        big = "x" * size
        out = await client.runs.wait(None, "steps", input={"done": [big]})
        assert out == {"done": [big, *ALL_STEPS]}
        thread = await client.threads.create()
        run = await client.runs.create(thread["thread_id"], "steps", input={"done": [big]})
        joined = await client.runs.join(thread["thread_id"], run["run_id"])
        assert joined == {"done": [big, *ALL_STEPS]}
        parts = [p async for p in client.runs.join_stream(thread["thread_id"], run["run_id"])]
        assert [p.event for p in parts][-2:] == ["values", "end"]
        assert all(not p.event.startswith("__") for p in parts)
        parts = [
            p
            async for p in client.runs.stream(
                thread["thread_id"], "steps", input={"done": []}, stream_mode="updates"
            )
        ]
        assert [p.event for p in parts] == ["metadata"] + ["updates"] * 5 + ["end"]


async def test_failing_run_reports_error(client: LangGraphClient) -> None:
    t = await client.threads.create()
    out = await client.runs.wait(t["thread_id"], "failing", input={"x": 1}, raise_error=False)
    assert out["__error__"]["error"] == "ValueError"
    assert "failed on purpose" in out["__error__"]["message"]
    [run] = await client.runs.list(t["thread_id"])
    assert run["status"] == "error"
    assert (await client.threads.get(t["thread_id"]))["status"] == "error"
    parts = [p async for p in client.runs.stream(t["thread_id"], "failing", input={"x": 2})]
    assert [p.event for p in parts][-2:] == ["error", "end"]
    assert parts[-2].data["error"] == "ValueError"


async def test_stream_wire_format(server: Any, client: LangGraphClient) -> None:
    t = await client.threads.create()
    body = {"assistant_id": "agent", "input": AGENT_INPUT, "stream_mode": ["values", "updates"]}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        http.stream("POST", f"/threads/{t['thread_id']}/runs/stream", json=body) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = (await r.aread()).decode()
        location, content_location = r.headers["location"], r.headers["content-location"]
    assert raw.startswith("event: metadata\n")
    run_id = content_location.rsplit("/", 1)[1]
    assert content_location == f"/threads/{t['thread_id']}/runs/{run_id}"
    assert location == f"{content_location}/stream"
    assert "event: updates\n" in raw and "event: values\n" in raw
    assert raw.rstrip().split("\n\n")[-1].startswith("event: end")


async def test_stream_with_sdk_modes_and_subgraphs(client: LangGraphClient) -> None:
    t = await client.threads.create()
    parts = [
        p
        async for p in client.runs.stream(
            t["thread_id"], "agent", input=AGENT_INPUT, stream_mode=["values", "updates"]
        )
    ]
    events = [p.event for p in parts]
    assert events[0] == "metadata" and set(parts[0].data) == {"run_id", "attempt"}
    assert events[-1] == "end"
    updates = [p.data for p in parts if p.event == "updates"]
    assert [next(iter(u)) for u in updates] == ["model", "tools", "model"]
    assert ai_text([p for p in parts if p.event == "values"][-1].data) == "The sum is 5."

    subgraphs = await client.assistants.get_subgraphs("parent")
    assert (
        set(subgraphs) == {"child"} and "trail" in subgraphs["child"]["input_schema"]["properties"]
    )
    assert set(await client.assistants.get_subgraphs("parent", namespace="child")) == {"child"}
    assert await client.assistants.get_subgraphs("agent") == {}

    sub = [
        p
        async for p in client.runs.stream(
            None, "parent", input={"trail": []}, stream_mode="updates", stream_subgraphs=True
        )
    ]
    names = [p.event for p in sub]
    assert "updates" in names
    nested = [n for n in names if n.startswith("updates|child:")]
    assert nested, names
    inner = next(p for p in sub if p.event == nested[0])
    assert inner.data == {"inner": {"trail": ["inner"]}}


async def test_join_stream_resumes_after_last_event_id(client: LangGraphClient) -> None:
    t = await client.threads.create()
    run = await client.runs.create(
        t["thread_id"],
        "steps",
        input={"done": []},
        stream_mode=["values", "updates"],
        config={"configurable": {"sleep": 0.15}},
    )
    live = [p async for p in client.runs.join_stream(t["thread_id"], run["run_id"])]
    assert live[-1].event == "end"
    with_ids = [p for p in live if p.id]
    assert len(with_ids) >= 6
    cut = with_ids[3]
    resumed = [
        p
        async for p in client.runs.join_stream(t["thread_id"], run["run_id"], last_event_id=cut.id)
    ]
    assert [(p.event, p.id) for p in resumed] == [
        (p.event, p.id) for p in with_ids[with_ids.index(cut) + 1 :]
    ]
    only_values = [
        p
        async for p in client.runs.join_stream(t["thread_id"], run["run_id"], stream_mode="values")
    ]
    assert {p.event for p in only_values} == {"values", "end"}
    assert only_values[-2].data["done"] == ["s1", "s2", "s3", "s4", "s5"]


async def test_human_in_the_loop_pause_and_resume(client: LangGraphClient) -> None:
    t = await client.threads.create()
    paused = await client.runs.wait(t["thread_id"], "hitl", input={"topic": "launch"})
    assert paused["log"] == ["draft:launch"]
    [intr] = paused["__interrupt__"]
    assert intr["value"] == {"question": "approve launch?"} and intr["id"]
    [run] = await client.runs.list(t["thread_id"])
    assert run["status"] == "success"
    thread = await client.threads.get(t["thread_id"])
    assert thread["status"] == "interrupted"
    [(task_id, interrupts)] = thread["interrupts"].items()
    assert interrupts[0]["value"] == {"question": "approve launch?"}
    state = await client.threads.get_state(t["thread_id"])
    assert state["next"] == ["ask"] and state["interrupts"][0]["id"] == intr["id"]
    assert state["tasks"][0]["id"] == task_id

    done = await client.runs.wait(t["thread_id"], "hitl", command={"resume": "yes"})
    assert done["log"] == ["draft:launch", "asked:yes", "published:yes"]
    assert "__interrupt__" not in done
    thread = await client.threads.get(t["thread_id"])
    assert thread["status"] == "idle" and thread["interrupts"] == {}


async def test_update_state_as_node(client: LangGraphClient) -> None:
    t = await client.threads.create()
    await client.runs.wait(t["thread_id"], "hitl", input={"topic": "doc"})
    res = await client.threads.update_state(
        t["thread_id"], {"answer": "edited", "log": ["human-edit"]}, as_node="ask"
    )
    assert res["checkpoint"]["checkpoint_id"]
    state = await client.threads.get_state(t["thread_id"])
    assert state["next"] == ["publish"] and state["values"]["answer"] == "edited"
    out = await client.runs.wait(t["thread_id"], "hitl", input=None)
    assert out["log"][-1] == "published:edited"


async def test_interrupt_before_and_continue(client: LangGraphClient) -> None:
    t = await client.threads.create()
    out = await client.runs.wait(
        t["thread_id"], "steps", input={"done": []}, interrupt_before=["s3"]
    )
    assert out["done"] == ["s1", "s2"]
    assert (await client.threads.get(t["thread_id"]))["status"] == "interrupted"
    assert (await client.threads.get_state(t["thread_id"]))["next"] == ["s3"]
    out = await client.runs.wait(t["thread_id"], "steps", input=None, interrupt_after=["s4"])
    assert out["done"] == ["s1", "s2", "s3", "s4"]
    out = await client.runs.wait(t["thread_id"], "steps", input=None)
    assert out["done"] == ["s1", "s2", "s3", "s4", "s5"]
    assert (await client.threads.get(t["thread_id"]))["status"] == "idle"


async def test_time_travel_replay_and_fork(client: LangGraphClient) -> None:
    t = await client.threads.create()
    tid = t["thread_id"]
    await client.runs.wait(tid, "steps", input={"done": []})
    history = await client.threads.get_history(tid, limit=20)
    assert history[0]["values"]["done"] == ["s1", "s2", "s3", "s4", "s5"]
    before_s3 = next(s for s in history if s["next"] == ["s3"])
    cp_id = before_s3["checkpoint"]["checkpoint_id"]
    assert before_s3["values"]["done"] == ["s1", "s2"]

    at = await client.threads.get_state(tid, checkpoint_id=cp_id)
    assert at["values"]["done"] == ["s1", "s2"] and at["next"] == ["s3"]
    at2 = await client.threads.get_state(
        tid, checkpoint={"checkpoint_id": cp_id, "checkpoint_ns": ""}
    )
    assert at2["checkpoint"]["checkpoint_id"] == cp_id
    page = await client.threads.get_history(tid, limit=2, before={"checkpoint_id": cp_id})
    assert len(page) == 2 and all(s["values"].get("done", []) != ["s1", "s2"] for s in page)

    # replay from the checkpoint before s3: s3..s5 run again on a new branch
    replay = await client.runs.wait(tid, "steps", input=None, checkpoint_id=cp_id)
    assert replay["done"] == ["s1", "s2", "s3", "s4", "s5"]

    # fork: edit the state at that checkpoint, then continue from the fork
    fork = await client.threads.update_state(
        tid, {"done": ["edited"]}, as_node="s2", checkpoint_id=cp_id
    )
    forked = await client.runs.wait(
        tid, "steps", input=None, checkpoint_id=fork["checkpoint"]["checkpoint_id"]
    )
    assert forked["done"] == ["s1", "s2", "edited", "s3", "s4", "s5"]
    gone = str(uuid.uuid4())
    with pytest.raises(httpx.HTTPStatusError):
        await client.threads.get_state(tid, checkpoint_id=gone)


async def test_stateless_on_completion(client: LangGraphClient) -> None:
    kept = await client.runs.create(None, "agent", input=AGENT_INPUT, on_completion="keep")
    await client.runs.join(kept["thread_id"], kept["run_id"])
    assert (await client.runs.get(kept["thread_id"], kept["run_id"]))["status"] == "success"
    kept_thread = await client.threads.get(kept["thread_id"])
    assert kept_thread["status"] == "idle" and ai_text(kept_thread["values"]) == "The sum is 5."
    dropped = await client.runs.create(None, "agent", input=AGENT_INPUT)
    final = await client.runs.join(dropped["thread_id"], dropped["run_id"])
    assert ai_text(final) == "The sum is 5."
    for _ in range(50):
        r = await client.http.client.get(f"/threads/{dropped['thread_id']}/state")
        if r.status_code == 404:
            break
        await asyncio.sleep(0.1)
    with pytest.raises(NotFoundError):
        await client.threads.get(dropped["thread_id"])


async def test_run_bad_inputs(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    t = await client.threads.create()
    tid = t["thread_id"]
    with pytest.raises(NotFoundError):
        await client.runs.create(tid, "no-such-assistant", input={})
    with pytest.raises(NotFoundError):
        await client.runs.create(str(uuid.uuid4()), "agent", input=AGENT_INPUT)
    with pytest.raises(BadRequestError):
        await client.runs.create(None, "hitl", command={"resume": "x"})
    with pytest.raises(httpx.HTTPStatusError) as waited:  # runs.wait raises httpx's own error
        await client.runs.wait(None, "hitl", command={"resume": "x"})
    assert waited.value.response.status_code == 400
    both = {"assistant_id": "agent", "input": {}, "command": {"resume": 1}}
    r = await http.post(f"/threads/{tid}/runs", json=both)
    assert r.status_code == 422 and "both" in r.json()["detail"]
    for bad in (
        {"assistant_id": "agent", "stream_mode": "nonsense"},
        {"assistant_id": "agent", "multitask_strategy": "sometimes"},
        {"input": {}},
        {"assistant_id": "agent", "after_seconds": -1},
        {"assistant_id": "agent", "interrupt_before": "s1"},
    ):
        r = await http.post(f"/threads/{tid}/runs", json=bad)
        assert r.status_code == 422, (bad, r.text)
    r = await http.post(
        "/runs/wait",
        json={"assistant_id": "agent", "config": {"configurable": {"a": 1}}, "context": {"a": 1}},
    )
    assert r.status_code == 400
    assert (await http.get(f"/threads/{tid}/runs/{uuid.uuid4()}")).status_code == 404
    assert (await http.get(f"/threads/{tid}/runs/not-a-uuid")).status_code == 422
    assert (await http.get(f"/threads/{uuid.uuid4()}/runs")).status_code == 404
    assert (await http.get(f"/threads/{tid}/runs", params={"status": "odd"})).status_code == 422
    r = await http.post(f"/threads/{tid}/runs/{uuid.uuid4()}/cancel", params={"action": "explode"})
    assert r.status_code == 422
    with pytest.raises(UnprocessableEntityError):
        await client.runs.list(tid, limit=0)

    created = await client.runs.wait(
        str(uuid.uuid4()), "agent", input=AGENT_INPUT, if_not_exists="create"
    )
    assert ai_text(created) == "The sum is 5."


async def test_message_stream_modes(client: LangGraphClient) -> None:
    tuples = [
        p
        async for p in client.runs.stream(
            None, "agent", input=AGENT_INPUT, stream_mode="messages-tuple"
        )
    ]
    msgs = [p.data for p in tuples if p.event == "messages"]
    assert msgs and all(len(m) == 2 and "langgraph_node" in m[1] for m in msgs)
    text = "".join(m[0]["content"] for m in msgs if m[1]["langgraph_node"] == "model")
    assert "The sum is 5." in text

    full = [
        p
        async for p in client.runs.stream(None, "agent", input=AGENT_INPUT, stream_mode="messages")
    ]
    kinds = {p.event for p in full}
    assert {"messages/metadata", "messages/partial"} <= kinds
    partials = [p.data[0] for p in full if p.event == "messages/partial"]
    assert any(m["content"] == "The sum is 5." for m in partials)  # accumulated chunks


async def test_batch_and_bulk_cancel(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/runs/batch",
        json=[
            {"assistant_id": "factory", "input": {}, "on_completion": "keep"},
            {"assistant_id": "factory", "input": {}, "on_completion": "keep"},
        ],
    )
    assert r.status_code == 200
    runs = r.json()
    assert len(runs) == 2
    for run in runs:
        out = await client.runs.join(run["thread_id"], run["run_id"])
        assert out["greeting"].startswith("hello")
    assert (await http.post("/runs/batch", json=[])).status_code == 422

    t = await client.threads.create()
    slow = {"configurable": {"sleep": 0.5}}
    first = await client.runs.create(t["thread_id"], "steps", input={"done": []}, config=slow)
    second = await client.runs.create(t["thread_id"], "steps", input={"done": []}, config=slow)
    await client.runs.cancel_many(thread_id=t["thread_id"], status="all")
    await client.runs.join(t["thread_id"], first["run_id"])
    for run in (first, second):
        got = await client.runs.get(t["thread_id"], run["run_id"])
        assert got["status"] == "interrupted"
    missing = await http.post("/runs/cancel", json={"run_ids": [str(uuid.uuid4())]})
    assert missing.status_code == 404
    assert (await http.post("/runs/cancel", json={})).status_code == 422


async def test_disconnect_cancels_when_asked(client: LangGraphClient) -> None:
    t = await client.threads.create()
    stream = client.runs.stream(
        t["thread_id"],
        "steps",
        input={"done": []},
        config={"configurable": {"sleep": 0.5}},
        on_disconnect="cancel",
    )
    first = await anext(stream)
    assert first.event == "metadata"
    run_id = first.data["run_id"]
    await stream.aclose()  # the client goes away mid-run
    for _ in range(100):
        status = (await client.runs.get(t["thread_id"], run_id))["status"]
        if status not in ("pending", "running"):
            break
        await asyncio.sleep(0.1)
    assert status == "interrupted"


async def test_prune_and_supersteps(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    t = await client.threads.create(
        graph_id="hitl",
        supersteps=[
            {"updates": [{"values": {"topic": "seeded", "log": ["x"]}, "as_node": "draft"}]}
        ],
    )
    state = await client.threads.get_state(t["thread_id"])
    assert state["values"]["topic"] == "seeded" and state["next"] == ["ask"]
    assert (await client.threads.get(t["thread_id"]))["status"] == "interrupted"

    keep = await client.threads.create()
    await client.runs.wait(keep["thread_id"], "steps", input={"done": []})
    assert len(await client.threads.get_history(keep["thread_id"], limit=50)) > 1
    r = await http.post(
        "/threads/prune", json={"thread_ids": [keep["thread_id"]], "strategy": "keep_latest"}
    )
    assert r.json() == {"pruned_count": 1}
    history = await client.threads.get_history(keep["thread_id"], limit=50)
    assert len(history) == 1 and history[0]["values"]["done"] == ALL_STEPS

    r = await http.post("/threads/prune", json={"thread_ids": [t["thread_id"]]})
    assert r.json() == {"pruned_count": 1}
    with pytest.raises(NotFoundError):
        await client.threads.get(t["thread_id"])
    assert (await http.post("/threads/prune", json={"strategy": "delete"})).status_code == 422


async def test_webhook_receives_the_finished_run(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        await received.put(json.loads(body))
        writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    receiver = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = receiver.sockets[0].getsockname()[1]
    try:
        t = await client.threads.create()
        run = await client.runs.create(
            t["thread_id"], "failing", input={"x": 1}, webhook=f"http://127.0.0.1:{port}/hook"
        )
        hook = await asyncio.wait_for(received.get(), 30)
        assert hook["run_id"] == run["run_id"] and hook["status"] == "error"
        assert hook["error"]["error"] == "ValueError" and hook["webhook_sent_at"]
    finally:
        receiver.close()
    r = await http.post(
        f"/threads/{t['thread_id']}/runs", json={"assistant_id": "agent", "webhook": "ftp://x/y"}
    )
    assert r.status_code == 422 and "http" in r.json()["detail"]


async def test_thread_join_stream_follows_runs_and_resumes(client: LangGraphClient) -> None:
    t = await client.threads.create()
    tid = t["thread_id"]
    seen: list[Any] = []

    async def follow() -> None:
        stream = await client.threads.join_stream(tid, stream_mode=["run_modes", "lifecycle"])
        async for part in stream:
            seen.append(part)
            if sum(p.event == "end" for p in seen) == 2:
                return

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.5)
    first = await client.runs.create(tid, "steps", input={"done": []})
    second = await client.runs.create(tid, "steps", input={"done": []})
    await asyncio.wait_for(follower, 30)
    ends = [p.data["run_id"] for p in seen if p.event == "end"]
    assert ends == [first["run_id"], second["run_id"]]
    metas = [p.data["run_id"] for p in seen if p.event == "metadata"]
    assert metas == [first["run_id"], second["run_id"]]
    values = [p for p in seen if p.event == "values"]
    assert values[-1].data["done"] == ALL_STEPS + ALL_STEPS

    # resume from the middle of the first run: the rest of it, then the second run
    cut = next(p for p in seen if p.event == "values" and p.id.startswith(first["run_id"]))
    rest: list[Any] = []
    async for part in await client.threads.join_stream(tid, last_event_id=cut.id):
        rest.append(part)
        if part.event == "values" and part.data.get("done") == ALL_STEPS + ALL_STEPS:
            break
    expected = [p.id for p in seen if p.id and p.event == "values"]
    assert [p.id for p in rest] == expected[expected.index(cut.id) + 1 :]
    with pytest.raises(UnprocessableEntityError):
        async for _ in await client.threads.join_stream(tid, stream_mode="everything"):
            pass


async def test_thread_join_stream_from_the_start(client: LangGraphClient) -> None:
    """`Last-Event-ID: -1` (what the JS SDK sends to replay) on a thread stream: the active run
    from its first event, as without the header, not a 422."""
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(
        tid, "steps", input={"done": []}, config={"configurable": {"sleep": 0.2}}
    )
    await asyncio.sleep(0.5)  # a few steps done before the client joins
    parts = []
    stream = await client.threads.join_stream(
        tid, stream_mode=["run_modes", "lifecycle"], last_event_id="-1"
    )
    async for part in stream:
        parts.append(part)
        if part.event == "end":
            break
    whole = [p async for p in client.runs.join_stream(tid, run["run_id"], last_event_id="-1")]
    ids = [p.id for p in parts if p.id]
    assert ids and ids == [f"{run['run_id']}/{p.id}" for p in whole if p.id]
    assert [p.data["done"] for p in parts if p.event == "values"][-1] == ALL_STEPS


async def test_thread_ttl(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    short = {"strategy": "delete", "ttl": 0.02}  # minutes: about a second
    gone = await client.threads.create(ttl=short)
    pruned = await client.threads.create(ttl={"strategy": "keep_latest", "ttl": 0.02})
    await client.runs.wait(pruned["thread_id"], "steps", input={"done": []})
    for _ in range(100):
        left = await client.threads.search(ids=[gone["thread_id"]])
        history = await client.threads.get_history(pruned["thread_id"], limit=50)
        if not left and len(history) == 1:
            break
        await asyncio.sleep(0.1)
    assert left == [] and len(history) == 1
    assert history[0]["values"]["done"] == ALL_STEPS
    for bad in ({"ttl": 0}, {"ttl": "soon"}, {"strategy": "forget", "ttl": 1}):
        assert (await http.post("/threads", json={"ttl": bad})).status_code == 422


async def test_events_stream_mode(client: LangGraphClient) -> None:
    parts = [
        p
        async for p in client.runs.stream(
            None, "hitl", input={"topic": "e"}, stream_mode=["events", "updates"]
        )
    ]
    events = [p.data for p in parts if p.event == "events"]
    kinds = {e["event"] for e in events}
    assert {"on_chain_start", "on_chain_end", "on_chain_stream"} <= kinds
    assert any(e["name"] == "draft" for e in events)
    updates = [p.data for p in parts if p.event == "updates"]
    assert updates[0] == {"draft": {"log": ["draft:e"]}}
    assert not [p for p in parts if p.event == "values"]  # not requested
    # The root graph streams what was asked for, nothing the server needs for itself.
    root = [e for e in events if e["event"] == "on_chain_stream" and not e.get("parent_ids")]
    assert root and all(e["data"]["chunk"][0] == "updates" for e in root)
    only = [
        p.event async for p in client.runs.stream(None, "factory", input={}, stream_mode="events")
    ]
    assert set(only) == {"metadata", "events", "end"}
