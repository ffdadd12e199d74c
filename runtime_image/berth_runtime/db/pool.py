"""Connection pools: one for Berth's own queries, one shaped the way LangGraph's saver expects."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool

from berth_runtime.serde import dumps_bytes

# jsonb parameters may hold LangChain messages and other graph values.
set_json_dumps(dumps_bytes)


async def open_pool(
    uri: str,
    max_size: int,
    name: str,
    application_name: str | None = None,
    wait_timeout: float = 30.0,
) -> AsyncConnectionPool[AsyncConnection[DictRow]]:
    """A dict-row, autocommit pool (LangGraph's saver and store need autocommit connections).

    `wait_timeout`: how long a caller waits for a connection before PoolTimeout (the API answers
    503 then)."""
    kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    if application_name:
        kwargs["application_name"] = application_name
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        uri,
        min_size=1,
        max_size=max_size,
        kwargs=kwargs,
        name=name,
        open=False,
        connection_class=AsyncConnection[DictRow],
        timeout=wait_timeout,
    )
    await pool.open(wait=True, timeout=30)
    return pool
