"""Tiny helpers to run named queries on a connection."""

from __future__ import annotations

import functools
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from berth_runtime.db.sql import query

Conn = AsyncConnection[DictRow]


# Parameters passed as Postgres arrays, not jsonb.
_ARRAYS = frozenset({"run_ids", "statuses", "scopes", "lost_locks"})


def adapt(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters with dicts and lists wrapped as jsonb (arrays excepted)."""
    return {
        k: Jsonb(v) if isinstance(v, dict | list) and k not in _ARRAYS else v
        for k, v in params.items()
    }


@functools.cache
def sql_bytes(name: str) -> bytes:
    """A named query, encoded once."""
    return query(name).encode()


async def fetchone(conn: Conn, name: str, /, **params: Any) -> DictRow | None:
    cur = await conn.execute(sql_bytes(name), adapt(params))
    return await cur.fetchone() if cur.description else None


async def fetchall(conn: Conn, name: str, /, **params: Any) -> list[DictRow]:
    cur = await conn.execute(sql_bytes(name), adapt(params))
    return await cur.fetchall() if cur.description else []


async def execute(conn: Conn, name: str, /, **params: Any) -> int:
    cur = await conn.execute(sql_bytes(name), adapt(params))
    return cur.rowcount


async def returning(conn: Conn, name: str, /, **params: Any) -> list[DictRow]:
    """Rows of a statement that always answers rows (SELECT, ... RETURNING).

    Unlike `fetchall`, this also works inside a pipeline, where a cursor has no description
    until its results are fetched.
    """
    cur = await conn.execute(sql_bytes(name), adapt(params))
    return await cur.fetchall()
