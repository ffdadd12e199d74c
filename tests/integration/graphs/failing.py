"""A graph whose node raises: the run must end `error` with the message."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    x: int


def boom(state: State) -> dict[str, Any]:
    raise ValueError("boom: the node failed on purpose")


graph = (
    StateGraph(State).add_node("boom", boom).add_edge(START, "boom").add_edge("boom", END).compile()
)
