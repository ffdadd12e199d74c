"""Import graph objects from `./path.py:obj` and hand out runnable graphs.

A graph may be a compiled graph, a StateGraph (compiled here), or a (possibly async) factory
that takes a RunnableConfig. Whatever it is, the result gets Berth's Postgres checkpointer and
store attached, so every run is durable.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

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


class GraphRegistry:
    """Graph ids to graph objects; `get` attaches the checkpointer and the store."""

    def __init__(self, objects: dict[str, Any], checkpointer: Any, store: Any) -> None:
        self._objects = objects
        self._checkpointer = checkpointer
        self._store = store
        self._static: dict[str, Pregel[Any, Any, Any, Any]] = {}
        for graph_id, obj in objects.items():
            if not is_factory(obj):
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

    async def get(self, graph_id: str, config: dict[str, Any] | None = None) -> Any:
        """The runnable graph for a run (factories are called with the run's config).

        Typed `Any`: graphs are user code, and configs travel as plain dicts from the API.
        """
        if graph_id not in self._objects:
            raise GraphNotFound(graph_id)
        static = self._static.get(graph_id)
        if static is not None:
            return static
        factory = self._objects[graph_id]
        params = inspect.signature(factory).parameters
        result = factory(config or {}) if params else factory()
        if inspect.isawaitable(result):
            result = await result
        return self._attach(result)
