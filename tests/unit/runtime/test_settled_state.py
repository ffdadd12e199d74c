"""A run that ends cleanly is settled from the graph's last `checkpoints` event instead of
reading the state back; this checks that event against LangGraph's own state read."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from berth_runtime.executor.run import settled_state
from berth_runtime.serde import to_jsonable
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    messages: list[Any]


def _graph(pause: bool) -> Any:
    def first(state: State) -> State:
        return {"log": ["first"], "messages": [AIMessage("hi", id="m1")]}

    def second(state: State) -> State:
        if pause:
            return {"log": [str(interrupt("go on?"))]}
        return {"log": ["second"]}

    builder = StateGraph(State)
    builder.add_node("first", first).add_node("second", second)
    builder.add_edge(START, "first").add_edge("first", "second").add_edge("second", END)
    return builder.compile(checkpointer=InMemorySaver())


async def _last_root_checkpoint(graph: Any, config: dict[str, Any]) -> dict[str, Any] | None:
    last = None
    async for ns, mode, data in graph.astream(
        {"log": []}, config, stream_mode=["values", "checkpoints"], subgraphs=True
    ):
        if mode == "checkpoints" and not ns:
            last = data
    return last


async def test_a_finished_run_settles_to_what_get_state_says() -> None:
    graph = _graph(pause=False)
    config = {"configurable": {"thread_id": "t1"}}
    settled = settled_state(await _last_root_checkpoint(graph, config))
    state = await graph.aget_state(config)
    assert settled is not None and settled["next"] == [] and settled["tasks"] == []
    assert settled["values"] == to_jsonable(state.values)
    assert settled["values"]["log"] == ["first", "second"]


async def test_an_interrupted_run_is_read_back() -> None:
    graph = _graph(pause=True)
    config = {"configurable": {"thread_id": "t2"}}
    assert settled_state(await _last_root_checkpoint(graph, config)) is None
    assert settled_state(None) is None  # no checkpoint event at all (e.g. no checkpointer)
