"""Garbage at the MCP, A2A and protocol v2 endpoints: a 4xx or a JSON-RPC/protocol error
object, never a 500."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.integration.runtime.test_bad_input import GARBAGE

pytestmark = pytest.mark.integration

MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


async def test_no_500_at_the_protocol_endpoints(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    t = await client.threads.create()
    tid = t["thread_id"]
    failures: list[tuple[Any, ...]] = []

    def check(what: Any, r: httpx.Response) -> None:
        if r.status_code >= 500:
            failures.append((what, r.status_code, r.text[:200]))
        elif r.status_code >= 400:
            if not r.headers.get("content-type", "").startswith("application/json"):
                # the mcp transport's own answers (e.g. no Content-Type) are plain text
                if not (str(what[0]).startswith("/mcp") and r.text):
                    failures.append((what, r.status_code, r.text[:200]))
            elif not ({"detail", "error"} & set(r.json())):
                failures.append((what, r.status_code, r.text[:200]))

    for body in GARBAGE:
        for path in ("/a2a/agent", f"/threads/{tid}/commands", f"/threads/{tid}/stream/events"):
            check((path, body), await http.post(path, json=body))
        check(("/mcp", body), await http.post("/mcp", json=body, headers=MCP_HEADERS))
        for method in ("message/send", "message/stream", "tasks/get", "tasks/cancel"):
            rpc = {"jsonrpc": "2.0", "id": 1, "method": method, "params": body}
            r = await http.post("/a2a/agent", json=rpc)
            check((method, body), r)
            assert r.status_code != 200 or "error" in r.json(), (method, body, r.text)
        for method in ("run.start", "input.respond", "state.get", "agent.getTree"):
            params = body if isinstance(body, dict) else {"x": body}
            r = await http.post(
                f"/threads/{tid}/commands", json={"id": 1, "method": method, "params": params}
            )
            check((method, body), r)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
        for params in ({"name": "factory", "arguments": body}, {"name": body}, body):
            r = await http.post("/mcp", json={**call, "params": params}, headers=MCP_HEADERS)
            check(("tools/call", params), r)
    for path, params in [
        ("/.well-known/agent-card.json", {"assistant_id": "x" * 300}),
        ("/.well-known/agent-card.json", {"assistant_id": str(uuid.uuid4())}),
        (f"/threads/{tid}/storage", {}),
        ("/threads/nope/storage", {}),
        (f"/threads/{tid}/stream", {"stream_mode": "state_updates"}),
    ]:
        check((path, params), await http.get(path, params=params))
    assert failures == []
