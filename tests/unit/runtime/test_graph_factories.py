"""How graph factories are called, and how a run's context meets a graph's context schema."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from berth_runtime.config import ConfigError, settings_from_env
from berth_runtime.executor.run import schema_context
from berth_runtime.graphs.loader import GraphRegistry, factory_args
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.memory import InMemoryStore
from langgraph_sdk.runtime import ServerRuntime
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    model: str


@dataclass(kw_only=True)
class Context:
    model: str = "default-model"


def _graph(model: str = "") -> Any:
    def node(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        return {"model": model or runtime.context.model}

    return (
        StateGraph(State, context_schema=Context)
        .add_node("node", node)
        .add_edge(START, "node")
        .compile()
    )


def by_config(config: RunnableConfig) -> Any:
    return _graph(config["configurable"]["model"])


def by_runtime(runtime: ServerRuntime) -> Any:
    ert = runtime.execution_runtime
    return _graph(ert.context["model"] if ert is not None else "read")


def by_both(runtime: ServerRuntime, config: RunnableConfig) -> Any:
    return _graph(f"{runtime.access_context}/{config['configurable']['model']}")


def unclear(a: Any, b: Any) -> Any:
    return _graph()


def test_factory_signatures() -> None:
    rt = object()
    assert factory_args(lambda: None, "g")({"c": 1}, rt) == {}
    assert factory_args(by_config, "g")({"c": 1}, rt) == {"config": {"c": 1}}
    assert factory_args(by_runtime, "g")({"c": 1}, rt) == {"runtime": rt}
    assert factory_args(by_both, "g")({"c": 1}, rt) == {"runtime": rt, "config": {"c": 1}}
    with pytest.raises(ConfigError, match="ServerRuntime"):
        factory_args(unclear, "g")


async def test_every_factory_form_builds_a_graph() -> None:
    closed: list[str] = []

    @contextlib.asynccontextmanager
    async def managed(runtime: ServerRuntime) -> AsyncIterator[Any]:
        yield _graph("managed")
        closed.append(runtime.access_context)

    async def async_config(config: RunnableConfig) -> Any:
        return by_config(config)

    reg = GraphRegistry(
        {"c": by_config, "r": by_runtime, "b": by_both, "m": managed, "a": async_config},
        None,
        InMemoryStore(),
    )
    conf = {"configurable": {"model": "m1"}}
    ctx = {"model": "from-context"}
    got = {}
    for gid in ("c", "r", "b", "m", "a"):
        async with reg.open(gid, conf, access="threads.create_run", context=ctx) as graph:
            if gid == "m":
                assert closed == []  # open while the graph is in use
            got[gid] = (await graph.ainvoke({}, context={}))["model"]
    assert got == {
        "c": "m1",
        "r": "from-context",
        "b": "threads.create_run/m1",
        "m": "managed",
        "a": "m1",
    }
    assert closed == ["threads.create_run"]
    read = await reg.get("r", conf)  # a read gets no context
    assert (await read.ainvoke({}))["model"] == "read"


def test_schema_context_keeps_schema_fields_and_unmirrors_dropped_keys() -> None:
    graph = _graph()
    config = {"configurable": {"model": "x", "extra": 1, "mine": 2}}
    ctx = {"model": "x", "extra": 1}
    assert schema_context(graph, ctx, config, provided=True) == {"model": "x"}
    assert config["configurable"] == {"model": "x", "mine": 2}
    assert schema_context(graph, {}, config, provided=True) == {}


async def test_empty_context_builds_the_schema_from_its_defaults() -> None:
    assert (await _graph().ainvoke({}, context={}))["model"] == "default-model"


def test_wait_heartbeat_interval_setting() -> None:
    env = {"DATABASE_URI": "postgresql://x"}
    assert settings_from_env(env).wait_heartbeat_seconds == 5.0
    assert (
        settings_from_env({**env, "BERTH_WAIT_HEARTBEAT_SECONDS": "1"}).wait_heartbeat_seconds == 1
    )
    with pytest.raises(ConfigError):
        settings_from_env({**env, "BERTH_WAIT_HEARTBEAT_SECONDS": "0"})
