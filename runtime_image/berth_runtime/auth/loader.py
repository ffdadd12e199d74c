"""Load the `Auth` object that `langgraph.json` names in `auth.path`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langgraph_sdk import Auth

from berth_runtime.config import ConfigError, GraphSpec
from berth_runtime.graphs.loader import import_graph_object


def check_auth(obj: Any, where: str) -> Auth:
    """An Auth object with an `@auth.authenticate` handler (authorization handlers optional)."""
    if not isinstance(obj, Auth):
        raise ConfigError(
            f"{where}: expected a langgraph_sdk.Auth object, got {type(obj).__name__}"
        )
    if obj._authenticate_handler is None:
        raise ConfigError(f"{where}: the Auth object has no @auth.authenticate handler")
    return obj


def load_auth(spec: GraphSpec, deps: Iterable[Path]) -> Auth:
    return check_auth(import_graph_object(spec, deps), f"auth {spec.path}:{spec.attr}")
