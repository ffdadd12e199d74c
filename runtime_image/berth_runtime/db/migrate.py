"""Apply schema migrations once, in order, even when several replicas start together.

A session-level advisory lock serialises replicas; each applied version is recorded in
`berth_migrations`. LangGraph's checkpointer and store tables are set up under the same lock
because their own `setup()` is not safe to run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from berth_runtime.db.sql import migration_files

log = logging.getLogger(__name__)

# Any constant works as long as every replica uses the same one.
MIGRATION_LOCK_KEY = 0x6265727468  # "berth"


async def connect_when_ready(
    database_uri: str, wait_seconds: float
) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    """Connect, retrying while Postgres starts (a bundled database may come up after us)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = 0.2
    while True:
        try:
            return await psycopg.AsyncConnection.connect(
                database_uri, autocommit=True, connect_timeout=5
            )
        except psycopg.OperationalError as e:
            if loop.time() + delay > deadline:
                raise
            log.warning("postgres not reachable yet (%s); retrying in %.1fs", e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def migrate(
    database_uri: str,
    wait_seconds: float = 0.0,
    then: Callable[[], Awaitable[Any]] | None = None,
) -> list[int]:
    """Apply pending migrations, then run `then` under the same lock; returns the versions
    applied by this call."""
    applied: list[int] = []
    async with await connect_when_ready(database_uri, wait_seconds) as conn:
        await _lock(conn)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS berth_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT version FROM berth_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for version, name, sql in migration_files():
                if version in done:
                    continue
                log.info("applying migration %s", name)
                async with conn.transaction():
                    await conn.execute(sql.encode())
                    await conn.execute(
                        "INSERT INTO berth_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                applied.append(version)
            await _setup_langgraph_tables(database_uri)
            if then is not None:
                await then()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied


async def _lock(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
    """Take the migration lock by polling, never by blocking inside a statement.

    A session blocked in pg_advisory_lock() keeps a snapshot open, and LangGraph's
    `CREATE INDEX CONCURRENTLY` waits for every open snapshot: the lock holder would wait for
    the waiters forever. Polling leaves waiters idle between tries.
    """
    delay = 0.05
    while True:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        row = await cur.fetchone()
        if row and row[0]:
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def _setup_langgraph_tables(database_uri: str) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres.aio import AsyncPostgresStore

    async with await psycopg.AsyncConnection.connect(
        database_uri, autocommit=True, prepare_threshold=0, row_factory=dict_row
    ) as conn:
        await AsyncPostgresSaver(conn).setup()
        await AsyncPostgresStore(conn).setup()
