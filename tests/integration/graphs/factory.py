"""An async graph factory taking the run's config; reads env set by langgraph.json."""

from __future__ import annotations

import os
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    greeting: str
    who: str


async def make_graph(config: RunnableConfig) -> Any:
    suffix = config.get("configurable", {}).get("suffix", "")

    def greet(state: State) -> dict[str, Any]:
        base = os.environ.get("BERTH_TEST_GREETING", "missing")
        return {"greeting": f"{base}{suffix}"}

    return (
        StateGraph(State)
        .add_node("greet", greet)
        .add_edge(START, "greet")
        .add_edge("greet", END)
        .compile()
    )
