"""A parent graph that calls a compiled subgraph as a node."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    trail: Annotated[list[str], operator.add]


def inner_step(state: State) -> dict[str, Any]:
    return {"trail": ["inner"]}


child = StateGraph(State).add_node("inner", inner_step).add_edge(START, "inner").compile()


def before(state: State) -> dict[str, Any]:
    return {"trail": ["before"]}


graph = (
    StateGraph(State)
    .add_node("before", before)
    .add_node("child", child)
    .add_edge(START, "before")
    .add_edge("before", "child")
    .add_edge("child", END)
    .compile()
)
