"""`/mcp` driven by the official `mcp` Python client (streamable HTTP + ClientSession)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from langgraph_sdk import get_client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.integration.runtime.conftest import REPO, RuntimeProcess, launch
from tests.support.servers import Server

pytestmark = pytest.mark.integration

OWNERS_CONFIG = REPO / "tests" / "integration" / "graphs" / "with_auth" / "owners.json"


@asynccontextmanager
async def mcp_session(url: str, token: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_every_assistant_is_a_tool_and_a_call_runs_it(server: RuntimeProcess) -> None:
    async with mcp_session(server.url) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert {"agent", "hitl", "steps", "parent", "failing", "factory"} <= set(tools)
        factory = tools["factory"]
        assert factory.input_schema["type"] == "object"
        assert set(factory.input_schema["properties"]) == {"greeting", "who"}

        result = await session.call_tool("factory", {"who": "mcp"})
        assert not result.is_error
        [content] = result.content
        out = json.loads(content.text)  # type: ignore[union-attr]
        assert out == {"greeting": "hello from langgraph.json", "who": "mcp"}

        # A chat agent takes messages as LangGraph does, e.g. {"role": "user", ...}.
        chat = await session.call_tool(
            "agent", {"messages": [{"role": "user", "content": "add 2 and 3"}]}
        )
        assert not chat.is_error, chat.content
        answer = json.loads(chat.content[0].text)["messages"][-1]  # type: ignore[union-attr]
        assert answer["content"] == "The sum is 5."

        # A graph that raises: the tool result says so (is_error), the session goes on.
        failed = await session.call_tool("failing", {})
        assert failed.is_error
        assert "error" in json.loads(failed.content[0].text)  # type: ignore[union-attr]


async def test_bad_tool_calls_are_protocol_errors(server: RuntimeProcess) -> None:
    async with mcp_session(server.url) as session:
        with pytest.raises(MCPError, match="Unknown tool"):
            await session.call_tool("no-such-agent", {})
        with pytest.raises(MCPError, match="Invalid arguments"):
            await session.call_tool("factory", {"who": 42})
        # still usable after the errors
        ok = await session.call_tool("factory", {})
        assert not ok.is_error


async def test_malformed_requests_get_4xx_not_500(server: RuntimeProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        headers = {"Accept": "application/json, text/event-stream"}
        bad = [
            b"{not json",
            b"[]",
            b'{"jsonrpc": "2.0", "id": 1}',
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "x"}',
        ]
        for raw in bad:
            r = await http.post(
                "/mcp", content=raw, headers={**headers, "Content-Type": "application/json"}
            )
            assert 400 <= r.status_code < 500, (raw, r.status_code, r.text)
            assert "error" in r.json(), (raw, r.text)
        r = await http.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 7, "method": "no/such"}, headers=headers
        )
        assert r.json()["error"]["code"] == -32601 and r.json()["id"] == 7


async def test_mcp_applies_auth(database_uri: str, redis: Server, tmp_path: Path) -> None:
    server = launch("serve", database_uri, redis.uri, tmp_path, config=OWNERS_CONFIG)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            assert r.status_code == 401
        alice_sdk = get_client(url=server.url, headers={"Authorization": "Bearer token-alice"})
        try:
            await alice_sdk.assistants.create("factory", name="alice-greeter")
        finally:
            await alice_sdk.aclose()
        # Tools are the assistants the caller may see: alice's own, not bob's.
        async with mcp_session(server.url, "token-alice") as alice:
            names = [t.name for t in (await alice.list_tools()).tools]
            assert names == ["alice-greeter"]
            result = await alice.call_tool("alice-greeter", {"who": "alice"})
            assert json.loads(result.content[0].text)["who"] == "alice"  # type: ignore[union-attr]
        async with mcp_session(server.url, "token-bob") as bob:
            assert (await bob.list_tools()).tools == []
            with pytest.raises(MCPError, match="Unknown tool"):
                await bob.call_tool("alice-greeter", {"who": "bob"})
    finally:
        server.terminate()
