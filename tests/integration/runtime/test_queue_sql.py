"""The queue's named SQL on a real Postgres: what a claim says about earlier attempts."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from berth_runtime.db import q
from berth_runtime.db.migrate import migrate
from psycopg.rows import dict_row

pytestmark = pytest.mark.integration

OWNER = "test-worker"


async def _insert_pending_run(conn: q.Conn) -> uuid.UUID:
    thread_id, run_id = uuid.uuid4(), uuid.uuid4()
    await q.execute(
        conn,
        "insert_thread",
        thread_id=thread_id,
        metadata={},
        config={},
        ttl=None,
        temporary=False,
    )
    row = await q.fetchone(
        conn,
        "insert_run",
        run_id=run_id,
        thread_id=thread_id,
        assistant_id=uuid.uuid4(),
        metadata={},
        kwargs={"graph_id": "g"},
        multitask_strategy="enqueue",
        after_seconds=0,
        temporary=False,
    )
    assert row is not None and row["created_at"] == row["updated_at"]
    return run_id


async def _claim(conn: q.Conn) -> dict[str, Any]:
    rows = await q.fetchall(conn, "claim_runs", limit=1, owner=OWNER, lease=30)
    assert len(rows) == 1
    return dict(rows[0])


async def test_only_a_first_claim_is_marked_never_claimed(database_uri: str) -> None:
    await migrate(database_uri)
    async with await psycopg.AsyncConnection.connect(
        database_uri, autocommit=True, row_factory=dict_row
    ) as conn:
        run_id = await _insert_pending_run(conn)
        first = await _claim(conn)
        assert first["run_id"] == run_id and first["attempt"] == 1
        assert first["never_claimed"] is True

        # Graceful shutdown gives the run back without counting the attempt (attempt 0
        # again): its next claim must still look for the checkpoints of the first one.
        assert await q.fetchone(conn, "requeue_run", run_id=run_id, owner=OWNER, attempt=1)
        second = await _claim(conn)
        assert second["attempt"] == 1 and second["never_claimed"] is False

        # A lapsed lease re-queued by the reaper: not a first claim either.
        await conn.execute(
            "UPDATE run SET lease_expires_at = clock_timestamp() - interval '1 second' "
            "WHERE run_id = %s",
            (run_id,),
        )
        reaped = await q.fetchall(conn, "reap_expired", max_attempts=3)
        assert [r["status"] for r in reaped] == ["pending"]
        third = await _claim(conn)
        assert third["attempt"] == 2 and third["never_claimed"] is False
