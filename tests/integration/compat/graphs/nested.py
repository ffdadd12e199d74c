"""A parent whose middle node is a compiled subgraph, for lifecycle events on child namespaces."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    trail: Annotated[list[str], operator.add]


def inner(state: State) -> dict[str, Any]:
    return {"trail": ["inner"]}


child = StateGraph(State).add_node("inner", inner).add_edge(START, "inner").compile(name="child")


def before(state: State) -> dict[str, Any]:
    return {"trail": ["before"]}


graph = (
    StateGraph(State)
    .add_node("before", before)
    .add_node("child", child)
    .add_edge(START, "before")
    .add_edge("before", "child")
    .compile()
)
