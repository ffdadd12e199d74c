"""Import graph objects from `./path.py:obj` and hand out runnable graphs.

A graph may be a compiled graph, a StateGraph (compiled here), or a factory in any form the
Agent Server accepts: a (possibly async) function of nothing, of the `RunnableConfig`, of the
server runtime (`langgraph_sdk.runtime.ServerRuntime`: store, user and, for executions, the
run's context), or of both (told apart by annotation); it may return the graph or an
(async) context manager yielding it, kept open while the graph is in use. Whatever it is, the
result gets Berth's Postgres checkpointer and store attached, so every run is durable.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import sys
import typing
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph_sdk.runtime import ServerRuntime, _ExecutionRuntime, _ReadRuntime

from berth_runtime.config import ConfigError, GraphSpec


class GraphNotFound(KeyError):
    """No graph with that id is configured."""


def import_graph_object(spec: GraphSpec, extra_paths: Iterable[Path] = ()) -> Any:
    """Import the module file and return the named attribute."""
    for p in [spec.path.parent, *extra_paths]:
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    if not spec.path.exists():
        raise ConfigError(f"graph {spec.graph_id!r}: file not found: {spec.path}")
    module_name = f"berth_graph_{spec.graph_id}_{abs(hash(str(spec.path)))}"
    module_spec = importlib.util.spec_from_file_location(module_name, spec.path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"graph {spec.graph_id!r}: cannot import {spec.path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    try:
        return getattr(module, spec.attr)
    except AttributeError:
        raise ConfigError(f"graph {spec.graph_id!r}: {spec.path} has no {spec.attr!r}") from None


def is_factory(obj: Any) -> bool:
    return callable(obj) and not isinstance(obj, Pregel | StateGraph)


AccessContext = Literal["threads.create_run", "threads.update", "threads.read", "assistants.read"]
# Builds a factory's keyword arguments from (config, server runtime).
FactoryArgs = Callable[[dict[str, Any], Any], dict[str, Any]]
# Annotations a factory module may leave as strings (`from __future__ import annotations`),
# or import only under TYPE_CHECKING.
_HINT_NAMES: dict[str, Any] = {
    "ServerRuntime": ServerRuntime,
    "RunnableConfig": RunnableConfig,
    "Config": RunnableConfig,
}


def _is_runtime_type(annotation: Any) -> bool:
    """`ServerRuntime`, `ServerRuntime[Ctx]`, a concrete runtime class, or Annotated of one."""
    if annotation is ServerRuntime:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, _ExecutionRuntime | _ReadRuntime)
    origin = typing.get_origin(annotation)
    if origin is ServerRuntime:
        return True
    args = typing.get_args(annotation)
    return origin is not None and bool(args) and _is_runtime_type(args[0])


def factory_args(fn: Callable[..., Any], graph_id: str) -> FactoryArgs:
    """How to call a factory, from its signature: no argument, the config, the server runtime
    (told by its annotation), or both by name in either order."""
    params = list(inspect.signature(fn).parameters.values())
    try:
        hints = typing.get_type_hints(fn, localns=_HINT_NAMES)
    except Exception:  # unresolvable annotations: fall back to the raw ones
        hints = {}
    runtime_params = [p.name for p in params if _is_runtime_type(hints.get(p.name, p.annotation))]
    if not params:
        return lambda config, runtime: {}
    if len(params) == 1:
        name = params[0].name
        if runtime_params:
            return lambda config, runtime: {name: runtime}
        return lambda config, runtime: {name: config}
    if len(params) == 2 and len(runtime_params) == 1:
        rt_name = runtime_params[0]
        cfg_name = next(p.name for p in params if p.name != rt_name)
        return lambda config, runtime: {rt_name: runtime, cfg_name: config}
    raise ConfigError(
        f"graph {graph_id!r}: a graph factory takes no argument, a RunnableConfig, a "
        f"ServerRuntime, or one of each; got ({', '.join(p.name for p in params)})"
    )


def server_runtime(access: AccessContext, store: Any, context: Any = None, user: Any = None) -> Any:
    """The ServerRuntime a factory gets: with the run's context when it executes a run."""
    if access == "threads.create_run":
        return _ExecutionRuntime(
            access_context=access, user=user, store=store, context=copy.copy(context)
        )
    return _ReadRuntime(access_context=access, user=user, store=store)


@contextlib.asynccontextmanager
async def _entered(value: Any) -> AsyncIterator[Any]:
    """A factory's result as a graph: awaited, or entered when it is a context manager."""
    if inspect.isawaitable(value):
        value = await value
    if hasattr(value, "__aenter__") and hasattr(value, "__aexit__"):
        async with value as graph:
            yield graph
    elif hasattr(value, "__enter__") and hasattr(value, "__exit__"):
        with value as graph:
            yield graph
    else:
        yield value


class GraphRegistry:
    """Graph ids to graph objects; `get` attaches the checkpointer and the store."""

    def __init__(self, objects: dict[str, Any], checkpointer: Any, store: Any) -> None:
        self._objects = objects
        self._checkpointer = checkpointer
        self._store = store
        self._static: dict[str, Pregel[Any, Any, Any, Any]] = {}
        self._factory_args: dict[str, FactoryArgs] = {}
        for graph_id, obj in objects.items():
            if is_factory(obj):
                self._factory_args[graph_id] = factory_args(obj, graph_id)
            else:
                self._static[graph_id] = self._attach(obj)

    @classmethod
    def load(
        cls, specs: Iterable[GraphSpec], deps: Iterable[Path], checkpointer: Any, store: Any
    ) -> GraphRegistry:
        deps = list(deps)
        objects = {spec.graph_id: import_graph_object(spec, deps) for spec in specs}
        for graph_id, obj in objects.items():
            if not (isinstance(obj, Pregel | StateGraph) or callable(obj)):
                raise ConfigError(
                    f"graph {graph_id!r} is a {type(obj).__name__}: expected a compiled graph, "
                    "a StateGraph or a graph factory"
                )
        return cls(objects, checkpointer, store)

    def ids(self) -> list[str]:
        return list(self._objects)

    def __contains__(self, graph_id: object) -> bool:
        return graph_id in self._objects

    def _attach(self, obj: Any) -> Pregel[Any, Any, Any, Any]:
        if isinstance(obj, StateGraph):
            return obj.compile(checkpointer=self._checkpointer, store=self._store)
        if isinstance(obj, Pregel):
            return obj.copy(update={"checkpointer": self._checkpointer, "store": self._store})
        raise ConfigError(f"a graph factory returned a {type(obj).__name__}, not a graph")

    @contextlib.asynccontextmanager
    async def open(
        self,
        graph_id: str,
        config: dict[str, Any] | None = None,
        *,
        access: AccessContext = "threads.read",
        context: Any = None,
        user: Any = None,
    ) -> AsyncIterator[Any]:
        """The runnable graph while the block runs; a factory is called with the config and/or
        a ServerRuntime for `access`, and a context manager it returns is closed on exit.

        Typed `Any`: graphs are user code, and configs travel as plain dicts from the API.
        """
        if graph_id not in self._objects:
            raise GraphNotFound(graph_id)
        static = self._static.get(graph_id)
        if static is not None:
            yield static
            return
        runtime = server_runtime(access, self._store, context, user)
        kwargs = self._factory_args[graph_id](dict(config or {}), runtime)
        async with _entered(self._objects[graph_id](**kwargs)) as built:
            yield self._attach(built)

    async def get(
        self,
        graph_id: str,
        config: dict[str, Any] | None = None,
        access: AccessContext = "threads.read",
    ) -> Any:
        """The graph for reading state, schemas or drawing it: only its structure is used, so
        a factory's context manager is already closed when this returns."""
        async with self.open(graph_id, config, access=access) as graph:
            return graph
