"""Whatever a client sends, the answer is a 2xx or a 4xx with a `detail`, never a 500."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.integration.runtime.conftest import RuntimeProcess

pytestmark = pytest.mark.integration

GARBAGE: list[Any] = [
    None,
    [],
    "text",
    7,
    {"assistant_id": 5},
    {"assistant_id": "agent", "input": {"messages": 3}},
    {"assistant_id": "agent", "config": "nope"},
    {"assistant_id": "agent", "config": {"configurable": "nope"}},
    {"assistant_id": "agent", "checkpoint_id": "not-a-checkpoint"},
    {"assistant_id": "agent", "command": {"goto": 5}},
    {"assistant_id": "agent", "metadata": [1]},
    {"values": 3},
    {"values": {"topic": 1}, "as_node": "no-such-node"},
    {"namespace": "a", "key": 1},
    {"limit": "many"},
    {"metadata": "x"},
    {"ids": ["x"]},
    {"filter": [1]},
    {"prefix": "a"},
    {"before": 12},
    {"thread_ids": ["x"]},
    # Found by schemathesis: values Postgres or JSON cannot hold, an empty namespace label.
    {"metadata": {"n": 2**70}},
    {"metadata": {"t": "a\u0000b"}},
    {"assistant_id": "agent", "metadata": {"t": "a\u0000b"}},
    {"graph_id": "a\u0000b"},
    {"prefix": [""], "suffix": [""]},
    {"namespace_prefix": ["a", ""]},
    {"namespace": ["a", ""], "key": "k", "value": {}},
    {"filter": {"field": {"no-such-operator": 1}}},
]


async def test_no_500_for_anything_a_client_sends(
    client: LangGraphClient, http: httpx.AsyncClient, server: RuntimeProcess
) -> None:
    t = await client.threads.create()
    tid = t["thread_id"]
    await client.runs.wait(tid, "hitl", input={"topic": "x"})
    rid = (await client.runs.list(tid))[0]["run_id"]
    aid = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "agent"))
    posts = [
        "/assistants",
        "/assistants/search",
        "/assistants/count",
        f"/assistants/{aid}/versions",
        f"/assistants/{aid}/latest",
        "/threads",
        "/threads/search",
        "/threads/count",
        "/threads/prune",
        f"/threads/{tid}/state",
        f"/threads/{tid}/state/checkpoint",
        f"/threads/{tid}/history",
        f"/threads/{tid}/runs",
        f"/threads/{tid}/runs/wait",
        f"/threads/{tid}/runs/stream",
        "/runs",
        "/runs/wait",
        "/runs/batch",
        "/runs/cancel",
        "/store/items/search",
        "/store/namespaces",
    ]
    failures = []
    for path in posts:
        for body in GARBAGE:
            r = await http.post(path, json=body)
            if r.status_code >= 500 or (r.status_code >= 400 and "detail" not in r.json()):
                failures.append((path, body, r.status_code, r.text[:200]))
    for method, path in [
        ("PUT", "/store/items"),
        ("DELETE", "/store/items"),
        ("PATCH", f"/assistants/{aid}"),
        ("PATCH", f"/threads/{tid}"),
    ]:
        for body in GARBAGE:
            r = await http.request(method, path, json=body)
            if r.status_code >= 500:
                failures.append((path, body, r.status_code, r.text[:200]))
    for path, params in [
        (f"/assistants/{aid}/graph", {"xray": "deep"}),
        (f"/threads/{tid}/history", {"limit": "x"}),
        (f"/threads/{tid}/history", {"before": "not-a-checkpoint"}),
        (f"/threads/{tid}/state/not-a-checkpoint", {}),
        (f"/threads/{tid}/runs", {"limit": "-3"}),
        (f"/threads/{tid}/runs/{rid}/stream", {"stream_mode": "bogus"}),
        ("/store/items", {"namespace": "a..b", "key": "k"}),
        ("/store/items", {"key": "k"}),
        ("/ok", {"check_db": "yes"}),
    ]:
        r = await http.get(path, params=params)
        if r.status_code >= 500:
            failures.append((path, params, r.status_code, r.text[:200]))
    r = await http.get(f"/threads/{tid}/runs/{rid}/stream", headers={"Last-Event-ID": "garbage-id"})
    if r.status_code >= 500:
        failures.append(("join-stream", "Last-Event-ID", r.status_code, r.text[:200]))
    assert failures == []
    # bad run inputs end their runs with a graph error, never by crashing a worker
    assert "worker lost" not in server.log()
    assert "executor failed" not in server.log()
