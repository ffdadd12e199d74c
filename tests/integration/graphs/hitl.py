"""Human in the loop: draft, ask a human (interrupt), publish."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    topic: str
    log: Annotated[list[str], operator.add]
    answer: str


def draft(state: State) -> dict[str, Any]:
    return {"log": [f"draft:{state.get('topic', '')}"]}


def ask(state: State) -> dict[str, Any]:
    answer = interrupt({"question": f"approve {state.get('topic', '')}?"})
    return {"answer": str(answer), "log": [f"asked:{answer}"]}


def publish(state: State) -> dict[str, Any]:
    return {"log": [f"published:{state.get('answer', '')}"]}


graph = (
    StateGraph(State)
    .add_node("draft", draft)
    .add_node("ask", ask)
    .add_node("publish", publish)
    .add_edge(START, "draft")
    .add_edge("draft", "ask")
    .add_edge("ask", "publish")
    .add_edge("publish", END)
    .compile()
)
