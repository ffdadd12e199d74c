"""`/mcp`: every assistant as an MCP tool, over streamable HTTP (stateless, JSON responses).

The `mcp` package speaks the protocol; this module only lists the assistants the caller may
see and runs one (a stateless run, awaited) per tool call. Authentication is the app's own
middleware; authorization goes through the same `@auth.on` handlers as the REST routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import mcp_types as types
from fastapi import FastAPI, HTTPException
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from psycopg.types.json import Jsonb
from starlette.requests import Request
from starlette.routing import Route

from berth_runtime.api.common import rt_of
from berth_runtime.api.runs import _create
from berth_runtime.auth.authorize import authorize
from berth_runtime.auth.filters import containment
from berth_runtime.models import RunCreateStateless
from berth_runtime.serde import dumps_bytes, to_jsonable
from berth_runtime.streams.reader import wait_until_done

VISIBLE_ASSISTANTS = (
    "SELECT * FROM assistant WHERE metadata @> %(auth_filter)s ORDER BY created_at, assistant_id"
)


def _request(ctx: Any) -> Request:
    request = getattr(ctx, "request", None)
    if not isinstance(request, Request):
        raise MCPError(types.INTERNAL_ERROR, "MCP request without its HTTP request")
    return request


async def _assistants(request: Request) -> dict[str, dict[str, Any]]:
    """The caller's assistants by tool name (the assistant's name; the oldest wins a tie)."""
    value: dict[str, Any] = {"metadata": {}, "graph_id": None}
    auth_filter = await authorize(request, "assistants", "search", value)
    rt = rt_of(request)
    async with rt.pool.connection() as conn:
        cur = await conn.execute(
            VISIBLE_ASSISTANTS, {"auth_filter": Jsonb(containment(auth_filter))}
        )
        rows = await cur.fetchall()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["graph_id"] in rt.graphs:
            out.setdefault(str(row["name"]), dict(row))
    return out


def _any_of(schema: Any) -> Any:
    """`oneOf` as `anyOf`: LangGraph's message unions overlap (`{"role": "user", ...}` fits
    several message types), and an input that fits more than one is still a good input."""
    if isinstance(schema, dict):
        return {("anyOf" if k == "oneOf" else k): _any_of(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_any_of(v) for v in schema]
    return schema


async def _input_schema(request: Request, assistant: dict[str, Any]) -> dict[str, Any]:
    graph = await rt_of(request).graphs.get(
        assistant["graph_id"], assistant["config"], "assistants.read"
    )
    try:
        schema = _any_of(to_jsonable(graph.get_input_jsonschema()))
    except Exception:
        schema = None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return {"type": "object"}
    return dict(schema)


async def list_tools(ctx: Any, _params: Any) -> types.ListToolsResult:
    request = _request(ctx)
    tools = []
    for name, assistant in (await _assistants(request)).items():
        tools.append(
            types.Tool(
                name=name,
                description=assistant.get("description") or f"Run the {name} agent",
                input_schema=await _input_schema(request, assistant),
            )
        )
    return types.ListToolsResult(tools=tools)


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    request = _request(ctx)
    assistant = (await _assistants(request)).get(params.name)
    if assistant is None:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name!r}")
    arguments = params.arguments or {}
    try:
        jsonschema.validate(arguments, await _input_schema(request, assistant))
    except jsonschema.ValidationError as e:
        raise MCPError(
            types.INVALID_PARAMS, f"Invalid arguments for tool {params.name!r}: {e.message}"
        ) from None
    body = RunCreateStateless(assistant_id=str(assistant["assistant_id"]), input=arguments)
    try:
        run = await _create(request, body, None)
    except HTTPException as e:
        raise MCPError(types.INVALID_PARAMS, str(e.detail)) from None
    final = await wait_until_done(rt_of(request), str(run["run_id"]), result_only=True)
    result = (final or {}).get("result") or {}
    error = result.get("__error__") if isinstance(result, dict) else None
    text = dumps_bytes(error if error else result).decode()
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=bool(error)
    )


class _Endpoint:
    """An ASGI app (not a function, so Starlette's Route passes scope/receive/send through)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.manager.handle_request(scope, receive, send)


def install(app: FastAPI) -> None:
    """Serve `/mcp` (and `/mcp/`) and run the MCP session manager inside the app's lifespan."""
    server: Server[Any] = Server(
        "berth", version="0.1.0", on_list_tools=list_tools, on_call_tool=call_tool
    )
    manager = StreamableHTTPSessionManager(server, json_response=True, stateless=True)

    endpoint = _Endpoint(manager)
    methods = ["GET", "POST", "DELETE"]
    app.router.routes.append(Route("/mcp", endpoint, methods=methods, include_in_schema=False))
    app.router.routes.append(Route("/mcp/", endpoint, methods=methods, include_in_schema=False))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state, manager.run():
            yield state

    app.router.lifespan_context = lifespan
