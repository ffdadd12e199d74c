"""Tiny helpers to run named queries on a connection."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from berth_runtime.db.sql import query

Conn = AsyncConnection[DictRow]


# Parameters passed as Postgres arrays, not jsonb.
_ARRAYS = frozenset({"run_ids", "statuses"})


def _adapt(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: Jsonb(v) if isinstance(v, dict | list) and k not in _ARRAYS else v
        for k, v in params.items()
    }


async def fetchone(conn: Conn, name: str, /, **params: Any) -> DictRow | None:
    cur = await conn.execute(query(name).encode(), _adapt(params))
    return await cur.fetchone() if cur.description else None


async def fetchall(conn: Conn, name: str, /, **params: Any) -> list[DictRow]:
    cur = await conn.execute(query(name).encode(), _adapt(params))
    return await cur.fetchall() if cur.description else []


async def execute(conn: Conn, name: str, /, **params: Any) -> int:
    cur = await conn.execute(query(name).encode(), _adapt(params))
    return cur.rowcount
