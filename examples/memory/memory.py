"""A memory agent: it saves what it is told and recalls it by meaning.

The server's store (`store` in a node) is indexed with `store.index` in langgraph.json, here
with Berth's local model `berth:wordllama` (no API key, no network), so `store.asearch(...,
query=...)` ranks memories by similarity. Input: `user_id`, and `remember` (a text to save)
and/or `recall` (what to look for); output: `memories`, the best matches, best first.
"""

from __future__ import annotations

import uuid
from typing import TypedDict

from langgraph.graph import START, StateGraph
from langgraph.store.base import BaseStore


class State(TypedDict, total=False):
    user_id: str
    remember: str
    recall: str
    memories: list[str]


async def memory(state: State, *, store: BaseStore) -> State:
    namespace = ("memories", state.get("user_id") or "anonymous")
    if state.get("remember"):
        await store.aput(namespace, uuid.uuid4().hex, {"text": state["remember"]})
    if not state.get("recall"):
        return {"memories": []}
    found = await store.asearch(namespace, query=state["recall"], limit=3)
    return {"memories": [item.value["text"] for item in found]}


graph = StateGraph(State).add_node("memory", memory).add_edge(START, "memory").compile()
