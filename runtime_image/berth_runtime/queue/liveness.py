"""A worker's liveness, as Postgres sees it: a session-level advisory lock held for life.

Each worker process takes `pg_try_advisory_lock(key)` (a random 63-bit key) on a connection of
its own, not one of the pool, and keeps that connection idle and open for as long as it lives.
Every run it claims records the key (`run.owner_lock`). When the process dies, however it dies,
the kernel closes its socket, Postgres ends the session and releases the lock; the reaper of any
other process (`reap_lost`, every `BERTH_LIVENESS_SECONDS`) then sees a running run whose
owner's lock nobody holds, and re-queues it. The lease stays as the fallback for a worker that
is hung but still connected.

The connection is watched with LISTEN-style waiting (psycopg's `notifies()`), so the worker
learns at once when its own session ends (Postgres restarted, the backend was terminated): its
runs are then given up at once (another process re-queues them as soon as it sees the lock
free) and it claims nothing until it holds a fresh lock.

Assumption: the connection reaches Postgres directly or through a *session*-pooling proxy.
Behind a transaction-pooling PgBouncer a session-level lock would stay on a server connection
shared with other clients; set `BERTH_WORKER_LIVENESS_LOCK=off` there (leases only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import psycopg

from berth_runtime.db import q

log = logging.getLogger(__name__)

# Server-side keepalives of the lock's session: if the worker's host vanishes without closing
# the socket, Postgres notices within about 5 + 2 * 3 s and releases the lock.
_SESSION_KEEPALIVES = (
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3"
)


class LivenessLock:
    """Holds the lock; calls `on_lost` when the session that held it is gone."""

    def __init__(
        self, database_uri: str, on_lost: Callable[[int], None], retry_seconds: float = 0.5
    ) -> None:
        self._uri = database_uri
        self._on_lost = on_lost
        self._retry = retry_seconds
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._held = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.key: int | None = None

    @property
    def held(self) -> bool:
        return self._held.is_set()

    async def wait_held(self) -> None:
        await self._held.wait()

    async def acquire(self) -> None:
        """Connect and take a fresh lock (raises if Postgres cannot be reached)."""
        conn = await psycopg.AsyncConnection.connect(
            self._uri,
            autocommit=True,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            application_name="berth-worker-liveness",
        )
        try:
            with contextlib.suppress(psycopg.Error):
                await conn.execute(_SESSION_KEEPALIVES)
            while True:
                key = secrets.randbits(63)
                cur = await conn.execute(q.sql_bytes("take_liveness_lock"), {"key": key})
                row = await cur.fetchone()
                if row and row[0]:
                    break
        except BaseException:
            await conn.close()
            raise
        self._conn, self.key = conn, key
        self._held.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="berth-liveness")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._held.clear()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _watch(self) -> None:
        while True:
            conn = self._conn
            if conn is not None:
                try:
                    # Nothing is ever notified on this connection: this only returns or raises
                    # when the session ends (the server closed the socket).
                    async for _ in conn.notifies():
                        pass
                except (psycopg.Error, OSError) as e:
                    log.warning("liveness lock %s lost: %r", self.key, e)
                else:
                    log.warning("liveness lock %s lost: connection closed", self.key)
                lost = self.key
                self._held.clear()
                self._conn, self.key = None, None
                with contextlib.suppress(Exception):
                    await conn.close()
                if lost is not None:
                    self._on_lost(lost)
            try:
                await self.acquire()
                log.info("liveness lock %s taken", self.key)
            except (psycopg.Error, OSError) as e:
                log.warning("taking the liveness lock failed: %r; retrying", e)
                await asyncio.sleep(self._retry)
