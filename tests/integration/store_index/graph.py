"""A graph that recalls memories from the server's store by meaning (`store.asearch(query=)`)."""

from __future__ import annotations

from typing import TypedDict

from langgraph.graph import START, StateGraph
from langgraph.store.base import BaseStore


class State(TypedDict, total=False):
    namespace: list[str]
    query: str
    keys: list[str]


async def recall(state: State, *, store: BaseStore) -> State:
    items = await store.asearch(tuple(state["namespace"]), query=state["query"], limit=2)
    return {"keys": [item.key for item in items]}


graph = StateGraph(State).add_node("recall", recall).add_edge(START, "recall").compile()
