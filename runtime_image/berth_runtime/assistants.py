"""Finding assistants by UUID or graph name, for the API and for what creates runs (the
queue, the cron scheduler): below both, so neither reaches up into the other."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import HTTPException

from berth_runtime.context import Runtime
from berth_runtime.db import q

# The namespace the Agent Server uses to derive default assistant ids from graph ids.
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def default_assistant_id(graph_id: str) -> uuid.UUID:
    return uuid.uuid5(ASSISTANT_NAMESPACE, graph_id)


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise HTTPException(422, f"{what} must be a UUID, got {value!r}") from None


def assistant_uuid(rt: Runtime, assistant_id: str) -> uuid.UUID:
    """The id an assistant is stored under: a UUID, or a graph name (its default assistant)."""
    try:
        return uuid.UUID(str(assistant_id))
    except ValueError:
        if assistant_id not in rt.graphs:
            raise HTTPException(404, f"Assistant '{assistant_id}' not found") from None
        return default_assistant_id(assistant_id)


def found_assistant(row: Any, assistant_id: str) -> dict[str, Any]:
    if row is None:
        raise HTTPException(404, f"Assistant '{assistant_id}' not found")
    return dict(row)


async def resolve_assistant(rt: Runtime, assistant_id: str) -> dict[str, Any]:
    """An assistant by UUID or by graph name (the graph's default assistant); 404 otherwise."""
    aid = assistant_uuid(rt, assistant_id)
    async with rt.pool.connection() as conn:
        row = await q.fetchone(conn, "get_assistant", assistant_id=aid)
    return found_assistant(row, assistant_id)
