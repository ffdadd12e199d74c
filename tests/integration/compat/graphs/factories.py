"""Graph factories in every form the Agent Server accepts.

Each builds the same small agent (model -> tools -> model) and reads the run's context to
pick the model (`model`) or to turn the search tool off (`no_search`):

- `from_config(config)`: a plain function of the RunnableConfig (context keys are mirrored
  into `configurable`);
- `from_runtime(runtime: ServerRuntime)`: gets the server runtime (store, user, and for
  executions the run's context);
- `from_config_and_runtime(runtime, config)`: both, by annotation, in either order;
- `managed(runtime)`: an async context manager that yields the graph and cleans up after the
  run, appending `<run_id> closed` to `$COMPAT_CLEANUP_LOG`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph_sdk.runtime import ServerRuntime
from models import load_chat_model


async def search(query: str) -> str:
    """Search the web (deterministic here)."""
    return f"results for {query}"


def build(settings: Mapping[str, Any], extra: str = "") -> CompiledStateGraph[Any, Any, Any, Any]:
    tools = [] if settings.get("no_search") else [search]
    model = load_chat_model(str(settings.get("model") or "fake/factory-default") + extra)
    bound = model.bind_tools(tools) if tools else model

    async def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    def route(state: MessagesState) -> Literal["__end__", "tools"]:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    builder = StateGraph(MessagesState)
    builder.add_node("call_model", call_model)
    builder.add_node("tools", ToolNode([search]))
    builder.add_edge(START, "call_model")
    builder.add_conditional_edges("call_model", route)
    builder.add_edge("tools", "call_model")
    return builder.compile()


def _context(runtime: ServerRuntime) -> Mapping[str, Any]:
    ert = runtime.execution_runtime
    ctx = ert.context if ert is not None else None
    return ctx if isinstance(ctx, Mapping) else {}


def from_config(config: RunnableConfig) -> Any:
    return build(config.get("configurable") or {})


async def from_runtime(runtime: ServerRuntime) -> Any:
    # The store is usable while the graph is being built (for per-user settings, say).
    await runtime.store.aput(("factory",), "last", {"access": runtime.access_context})
    return build(_context(runtime), extra=f"@{runtime.access_context}")


def from_config_and_runtime(runtime: ServerRuntime, config: RunnableConfig) -> Any:
    settings = {**(config.get("configurable") or {}), **_context(runtime)}
    return build(settings, extra="+both")


@contextlib.asynccontextmanager
async def managed(runtime: ServerRuntime) -> AsyncIterator[Any]:
    ert = runtime.execution_runtime
    yield build(_context(runtime), extra="+managed")
    log = os.environ.get("COMPAT_CLEANUP_LOG")
    if ert is not None and log:
        _note(log, f"{runtime.access_context} closed")


def _note(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
