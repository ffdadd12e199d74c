"""A graph factory that reads who runs it from the server runtime (`ServerRuntime.user`),
as the Agent Server hands it to factories: one graph per caller, built at run time."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import StateGraph
from langgraph_sdk.runtime import ServerRuntime


class State(TypedDict, total=False):
    user: str | None
    permissions: list[str]


def make_graph(runtime: ServerRuntime[Any]) -> Any:
    user = runtime.user
    built_for = {
        "user": user.identity if user is not None else None,
        "permissions": list(user.permissions) if user is not None else [],
    }

    def answer(state: State) -> dict[str, Any]:
        return built_for

    builder = StateGraph(State)
    builder.add_node("answer", answer)
    builder.set_entry_point("answer")
    return builder.compile()
