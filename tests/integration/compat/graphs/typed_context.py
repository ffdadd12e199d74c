"""A context schema written as a TypedDict (`runtime.context` stays a dict)."""

from __future__ import annotations

from typing import Any

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict


class Context(TypedDict, total=False):
    model: str
    user_name: str


class State(TypedDict, total=False):
    seen: Any


def read_context(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    return {"seen": None if ctx is None else dict(ctx)}


graph = (
    StateGraph(State, context_schema=Context)
    .add_node("read_context", read_context)
    .add_edge(START, "read_context")
    .compile()
)
