"""The tools of the MCP servers in `mcp.json`, as LangChain tools.

Each server's tools are listed once, when the graph module is imported (a server that
cannot be reached stops start-up, naming it). Each call opens a session of its own, so a
tool call never depends on a connection that a restart of the server dropped.
`${VAR}` in `env` values and `headers` is replaced from the process environment at call
time: keys stay in `.env` (a Secret on Kubernetes), never in `mcp.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException

from berth_runtime.deepagent.folder import MCP_FILE, FolderError, McpServer

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: str, env: Mapping[str, str]) -> str:
    """`${NAME}` -> the variable's value; an unset variable is an error naming it."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ToolException(f"{MCP_FILE}: ${{{name}}} is not set in the environment")
        return env[name]

    return _VAR.sub(sub, value)


@contextlib.asynccontextmanager
async def session(
    server: McpServer, env: Mapping[str, str], cwd: Path | None = None
) -> AsyncIterator[Any]:
    """An initialized `mcp.ClientSession` to one server (a command runs in `cwd`: the
    agent's folder, so `./server.py` in mcp.json is the folder's)."""
    from mcp import ClientSession

    if server.transport == "stdio":
        from mcp.client.stdio import StdioServerParameters, stdio_client

        # `python` is the runtime's own Python (it has `mcp`), whatever PATH says.
        command = server.command or ""
        if command in ("python", "python3"):
            command = sys.executable
        params = StdioServerParameters(
            command=command,
            args=list(server.args),
            env={**env, **{k: expand(v, env) for k, v in server.env}},
            cwd=cwd,
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            yield s
        return
    headers = {k: expand(v, env) for k, v in server.headers}
    url = server.url or ""
    if server.transport == "sse":
        from mcp.client.sse import sse_client

        async with (
            sse_client(url, headers=headers) as (read, write),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            yield s
        return
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as s,
    ):
        await s.initialize()
        yield s


def _text(result: Any) -> str:
    parts = []
    for item in getattr(result, "content", None) or []:
        text = getattr(item, "text", None)
        parts.append(text if isinstance(text, str) else str(item))
    return "\n".join(parts)


def make_tool(
    server: McpServer, name: str, description: str, schema: dict[str, Any], cwd: Path | None
) -> BaseTool:
    async def call(**arguments: Any) -> str:
        async with session(server, dict(os.environ), cwd) as s:
            result = await s.call_tool(name, arguments)
        text = _text(result)
        if getattr(result, "is_error", False):
            raise ToolException(text or f"{name} failed")
        return text

    return StructuredTool.from_function(
        coroutine=call,
        name=name,
        description=description or f"{name} (MCP server {server.name})",
        args_schema=schema or {"type": "object", "properties": {}},
        handle_tool_error=True,
    )


def _leaf(e: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return e


async def _list(servers: tuple[McpServer, ...], cwd: Path | None) -> list[BaseTool]:
    tools: list[BaseTool] = []
    env = dict(os.environ)
    for server in servers:
        try:
            async with session(server, env, cwd) as s:
                listed = (await s.list_tools()).tools
        except Exception as group:
            e = _leaf(group)
            raise FolderError(
                f"{MCP_FILE}: mcpServers.{server.name}: cannot list its tools: "
                f"{type(e).__name__}: {e}"
            ) from None
        for tool in listed:
            schema = dict(getattr(tool, "input_schema", None) or {})
            tools.append(make_tool(server, tool.name, tool.description or "", schema, cwd))
    return tools


def list_tools(servers: tuple[McpServer, ...], cwd: Path | None = None) -> list[BaseTool]:
    """List every server's tools (in a thread of its own: the caller may run a loop)."""
    if not servers:
        return []
    out: list[list[BaseTool]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(asyncio.run(_list(servers, cwd)))
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, name="berth-mcp-list")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]
