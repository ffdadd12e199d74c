"""Helpers shared by the route modules: JSON responses, ids, paging, the runtime handle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from psycopg import sql

from berth_runtime.context import Runtime
from berth_runtime.serde import dumps_bytes


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
