"""Helpers shared by the route modules: JSON responses, ids, paging, the runtime handle."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from psycopg import sql

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


def order_by(column: str, direction: str | None, *, nulls_last: bool = False) -> sql.Composable:
    """An ORDER BY term; `column` must come from a validated (Literal) request field."""
    return sql.SQL("{} {}{}").format(
        sql.Identifier(column),
        sql.SQL("ASC" if direction == "asc" else "DESC"),
        sql.SQL(" NULLS LAST" if nulls_last else ""),
    )


async def count_rows(rt: Runtime, table: str, where: sql.Composable, params: dict[str, Any]) -> int:
    """How many rows of `table` match `where` (the /count endpoints, and empty pages)."""
    stmt = sql.SQL("SELECT count(*) AS n FROM {} WHERE {}").format(sql.Identifier(table), where)
    async with rt.pool.connection() as conn:
        row = await (await conn.execute(stmt, params)).fetchone()
    return int(row["n"]) if row else 0


async def search_page(
    rt: Runtime,
    table: str,
    where: sql.Composable,
    params: dict[str, Any],
    *,
    order: sql.Composable,
    limit: int,
    offset: int,
    select: Sequence[str] | None,
    to_json: Callable[[Any], dict[str, Any]],
) -> Response:
    """One page of a search, with the total in the X-Pagination headers: a window count
    comes with the rows; a page past the end asks for the count separately."""
    page = sql.SQL(
        "SELECT *, count(*) OVER () AS total FROM {} WHERE {} ORDER BY {} "
        "LIMIT %(limit)s OFFSET %(offset)s"
    ).format(sql.Identifier(table), where, order)
    async with rt.pool.connection() as conn:
        cur = await conn.execute(page, {**params, "limit": limit, "offset": offset})
        rows = await cur.fetchall()
    total = int(rows[0]["total"]) if rows else await count_rows(rt, table, where, params)
    items = [to_json(r) for r in rows]
    if select:
        items = [{k: v for k, v in item.items() if k in select} for item in items]
    return json_response(items, headers=paging_headers(total, offset, len(items)))


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
