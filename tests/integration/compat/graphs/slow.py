"""A graph that takes 15 s, so /wait and /join must keep the connection alive meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    slept: float
    seconds: float


async def nap(state: State) -> dict[str, Any]:
    seconds = float(state.get("seconds", 15))
    await asyncio.sleep(seconds)
    return {"slept": seconds}


graph = StateGraph(State).add_node("nap", nap).add_edge(START, "nap").compile()
