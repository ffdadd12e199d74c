"""Helpers shared by the route modules: JSON responses, ids, paging, the runtime handle."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response

from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.serde import dumps_bytes

# The namespace the Agent Server uses to derive default assistant ids from graph ids.
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def default_assistant_id(graph_id: str) -> uuid.UUID:
    return uuid.uuid5(ASSISTANT_NAMESPACE, graph_id)


def rt_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(dumps_bytes(data), status_code, headers, media_type="application/json")


def paging_headers(total: int, offset: int, returned: int) -> dict[str, str]:
    headers = {"X-Pagination-Total": str(total)}
    if offset + returned < total:
        headers["X-Pagination-Next"] = str(offset + returned)
    return headers


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise HTTPException(422, f"{what} must be a UUID, got {value!r}") from None


def row_json(row: Any) -> dict[str, Any]:
    """A database row as the API shows it (private columns removed)."""
    out = dict(row)
    for private in (
        "total",
        "owner",
        "lease_expires_at",
        "available_at",
        "cancel_action",
        "result",
        "temporary",
        "ended_at",
        "idle_status",
        "attempt",
    ):
        out.pop(private, None)
    return out


async def resolve_assistant(rt: Runtime, assistant_id: str) -> dict[str, Any]:
    """An assistant by UUID or by graph name (the graph's default assistant); 404 otherwise."""
    try:
        aid = uuid.UUID(str(assistant_id))
    except ValueError:
        if assistant_id not in rt.graphs:
            raise HTTPException(404, f"Assistant '{assistant_id}' not found") from None
        aid = default_assistant_id(assistant_id)
    async with rt.pool.connection() as conn:
        row = await q.fetchone(conn, "get_assistant", assistant_id=aid)
    if row is None:
        raise HTTPException(404, f"Assistant '{assistant_id}' not found")
    return dict(row)
