"""The queue's named SQL on a real Postgres: what a claim says about earlier attempts."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from typing import Any

import psycopg
import pytest
from berth_runtime.db import q
from berth_runtime.db.migrate import migrate
from psycopg.rows import dict_row

from tests.support.servers import Server

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
        thread_metadata={},
    )
    assert row is not None and row["created_at"] == row["updated_at"]
    return run_id


async def _claim(conn: q.Conn, owner_lock: int | None = None) -> dict[str, Any]:
    rows = await q.fetchall(
        conn, "claim_runs", limit=1, owner=OWNER, owner_lock=owner_lock, lease=30
    )
    assert len(rows) == 1
    return dict(rows[0])


async def test_a_run_is_reaped_when_its_owners_liveness_lock_is_free(
    database_uri: str, postgres: Server
) -> None:
    """The lease is 30 s, but the run is re-queued as soon as its owner's session is gone."""
    await migrate(database_uri)
    # The same key held in another database of the cluster does not keep the owner alive.
    elsewhere = await psycopg.AsyncConnection.connect(postgres.uri, autocommit=True)
    # Keys whose halves look like negative int4s too (pg_locks shows them as unsigned oids).
    keys = [(1 << 62) + 12345, -((1 << 40) + 7), 0x7FFFFFFF_FFFFFFFF]
    async with await psycopg.AsyncConnection.connect(
        database_uri, autocommit=True, row_factory=dict_row
    ) as conn:
        await conn.execute("DELETE FROM run")
        for key in keys:
            holder = await psycopg.AsyncConnection.connect(database_uri, autocommit=True)
            cur = await holder.execute(q.sql_bytes("take_liveness_lock"), {"key": key})
            assert (await cur.fetchone()) == (True,)
            run_id = await _insert_pending_run(conn)
            claimed = await _claim(conn, owner_lock=key)
            assert claimed["owner_lock"] == key
            # A live owner (its session holds the lock, its lease runs): nothing to reap, and
            # neither for a run claimed without a lock.
            other = await _insert_pending_run(conn)
            await _claim(conn)
            assert await q.fetchall(conn, "reap_lost", max_attempts=3, lost_locks=[]) == []
            await elsewhere.execute(q.sql_bytes("take_liveness_lock"), {"key": key})
            # One of the owner's pool sessions outlives its lock session (a statement it sent
            # before dying still runs): not yet.
            straggler = await psycopg.AsyncConnection.connect(
                database_uri, autocommit=True, application_name=f"berth {OWNER}"
            )
            await holder.close()  # the owner's session ends, as when its process dies
            assert await q.fetchall(conn, "reap_lost", max_attempts=3, lost_locks=[]) == []
            await straggler.close()
            for _ in range(50):  # the backend exits just after the client closes
                reaped = await q.fetchall(conn, "reap_lost", max_attempts=3, lost_locks=[])
                if reaped:
                    break
                await asyncio.sleep(0.02)
            assert [(r["run_id"], r["status"]) for r in reaped] == [(run_id, "pending")]
            row = await q.fetchone(conn, "get_run_by_id", run_id=run_id)
            assert row is not None and row["owner"] is None and row["owner_lock"] is None
            await conn.execute("DELETE FROM run WHERE run_id = ANY(%s)", ([run_id, other],))
    await elsewhere.close()


async def test_a_worker_re_queues_the_runs_of_a_liveness_lock_it_lost(database_uri: str) -> None:
    """Its process lives (its sessions are there), so only its own reaper may say so."""
    await migrate(database_uri)
    async with await psycopg.AsyncConnection.connect(
        database_uri, autocommit=True, row_factory=dict_row, application_name=f"berth {OWNER}"
    ) as conn:
        await conn.execute("DELETE FROM run")
        run_id = await _insert_pending_run(conn)
        await _claim(conn, owner_lock=42)  # nobody holds lock 42
        assert await q.fetchall(conn, "reap_lost", max_attempts=3, lost_locks=[]) == []
        reaped = await q.fetchall(conn, "reap_lost", max_attempts=3, lost_locks=[42])
        assert [(r["run_id"], r["status"]) for r in reaped] == [(run_id, "pending")]


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
        reaped = await q.fetchall(conn, "reap_lost", max_attempts=3, lost_locks=[])
        assert [r["status"] for r in reaped] == ["pending"]
        third = await _claim(conn)
        assert third["attempt"] == 2 and third["never_claimed"] is False


async def _assistant(conn: q.Conn) -> dict[str, Any]:
    row = await q.fetchone(
        conn,
        "insert_assistant",
        assistant_id=uuid.uuid4(),
        graph_id="g",
        name="g",
        description=None,
        config={},
        context={},
        metadata={},
    )
    assert row is not None
    return dict(row)


def _enqueue_params(
    assistant: dict[str, Any], thread_id: uuid.UUID, strategy: str, **extra: Any
) -> dict[str, Any]:
    return {
        "run_id": uuid.uuid4(),
        "thread_id": thread_id,
        "assistant_id": assistant["assistant_id"],
        "assistant_updated_at": assistant["updated_at"],
        "metadata": {},
        "kwargs": {"graph_id": "g"},
        "multitask_strategy": strategy,
        "after_seconds": 0,
        "thread_metadata": {"graph_id": "g"},
        "new_thread_metadata": None,
        "new_thread_temporary": False,
        **extra,
    }


async def _thread(conn: q.Conn, thread_id: uuid.UUID) -> dict[str, Any]:
    row = await q.fetchone(conn, "get_thread", thread_id=thread_id)
    assert row is not None
    return dict(row)


async def test_enqueue_run_takes_only_the_cases_with_nothing_to_decide(database_uri: str) -> None:
    """berth_enqueue_run creates the run when nothing needs deciding and otherwise changes
    nothing and answers no row (the caller's general path then locks, refuses or cancels)."""
    await migrate(database_uri)
    async with await psycopg.AsyncConnection.connect(
        database_uri, autocommit=True, row_factory=dict_row
    ) as conn:
        assistant = await _assistant(conn)
        missing = uuid.uuid4()
        assert (
            await q.fetchone(conn, "enqueue_run", **_enqueue_params(assistant, missing, "enqueue"))
            is None
        )
        assert await q.fetchone(conn, "get_thread", thread_id=missing) is None

        # A stateless run brings its own thread, hidden and busy.
        stateless = uuid.uuid4()
        params = _enqueue_params(
            assistant,
            stateless,
            "enqueue",
            new_thread_metadata={"owner": "a"},
            new_thread_temporary=True,
        )
        run = await q.fetchone(conn, "enqueue_run", **params)
        assert run is not None and run["temporary"] and run["status"] == "pending"
        thread = await _thread(conn, stateless)
        assert thread["temporary"] and thread["status"] == "busy"
        assert thread["metadata"] == {"owner": "a", "graph_id": "g"}
        # ... and is no thread for stateful runs.
        assert (
            await q.fetchone(
                conn, "enqueue_run", **_enqueue_params(assistant, stateless, "enqueue")
            )
            is None
        )

        run_id = await _insert_pending_run(conn)
        tid = (await q.fetchone(conn, "get_run_by_id", run_id=run_id) or {})["thread_id"]
        for strategy in ("reject", "interrupt", "rollback"):
            assert (
                await q.fetchone(conn, "enqueue_run", **_enqueue_params(assistant, tid, strategy))
                is None
            )
        second = await q.fetchone(conn, "enqueue_run", **_enqueue_params(assistant, tid, "enqueue"))
        assert second is not None and second["created_at"] == second["updated_at"]
        runs = await q.fetchall(conn, "inflight_runs", thread_id=tid)
        assert [r["run_id"] for r in runs] == [run_id, second["run_id"]]
        assert (await _thread(conn, tid))["status"] == "busy"

        # Built from an assistant that has changed since (or is gone): nothing happens.
        stale = {**assistant, "updated_at": assistant["updated_at"] - datetime.timedelta(1)}
        for built_from in (stale, {**assistant, "assistant_id": uuid.uuid4()}):
            params = _enqueue_params(built_from, tid, "enqueue")
            assert await q.fetchone(conn, "enqueue_run", **params) is None
            params = _enqueue_params(
                built_from,
                uuid.uuid4(),
                "enqueue",
                new_thread_metadata={},
                new_thread_temporary=True,
            )
            assert await q.fetchone(conn, "enqueue_run", **params) is None
            assert await q.fetchone(conn, "get_thread", thread_id=params["thread_id"]) is None


async def test_finish_is_fenced_and_says_whether_the_thread_has_more_work(
    database_uri: str,
) -> None:
    await migrate(database_uri)
    async with await psycopg.AsyncConnection.connect(
        database_uri, autocommit=True, row_factory=dict_row
    ) as conn:
        run_id = await _insert_pending_run(conn)
        claimed = await _claim(conn)
        tid = claimed["thread_id"]
        assistant = await _assistant(conn)
        queued = await q.fetchone(conn, "enqueue_run", **_enqueue_params(assistant, tid, "enqueue"))
        assert queued is not None

        def finish(owner: str, attempt: int, run: uuid.UUID = run_id) -> dict[str, Any]:
            return {
                "run_id": run,
                "owner": owner,
                "attempt": attempt,
                "status": "success",
                "result": {"reply": "hi"},
                "values": {"reply": "hi"},
                "interrupts": {},
                "error": None,
                "idle_status": "idle",
            }

        # A worker that lost its lease (another owner, or an older attempt) writes nothing.
        for owner, attempt in (("someone-else", 1), (OWNER, 0)):
            row = await q.fetchone(conn, "finish_run_set_thread", **finish(owner, attempt))
            assert row is not None and row["thread_status"] is None
        assert (await q.fetchone(conn, "get_run_by_id", run_id=run_id) or {})["status"] == "running"

        row = await q.fetchone(conn, "finish_run_set_thread", **finish(OWNER, 1))
        assert row is not None and row["thread_status"] == "busy"  # the queued run waits
        thread = await _thread(conn, tid)
        assert thread["values"] == {"reply": "hi"} and thread["idle_status"] == "idle"
        done = await q.fetchone(conn, "get_run_by_id", run_id=run_id)
        assert done is not None and done["status"] == "success" and done["owner"] is None

        # The queued run, once it is the last one of the thread, leaves the thread idle.
        second = await _claim(conn)
        assert second["run_id"] == queued["run_id"]
        row = await q.fetchone(
            conn, "finish_run_set_thread", **finish(OWNER, 1, run=queued["run_id"])
        )
        assert row is not None and row["thread_status"] == "idle"
        assert (await _thread(conn, tid))["status"] == "idle"


async def _checkpoint(conn: q.Conn, run_id: uuid.UUID) -> None:
    """One more checkpoint of the run, as an attempt's step would write."""
    await conn.execute(
        "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata)"
        " SELECT thread_id::text, '', %s, '{}'::jsonb, jsonb_build_object('run_id', %s::text)"
        " FROM run WHERE run_id = %s",
        (str(uuid.uuid4()), str(run_id), run_id),
    )


async def test_only_attempts_that_die_at_the_same_checkpoint_use_up_the_budget(
    database_uri: str,
) -> None:
    """A run killed again and again while it checkpoints lives on; stuck at one checkpoint,
    it fails after max_attempts attempts there."""
    await migrate(database_uri)
    async with await psycopg.AsyncConnection.connect(
        database_uri, autocommit=True, row_factory=dict_row
    ) as conn:
        await conn.execute("DELETE FROM run")
        run_id = await _insert_pending_run(conn)

        async def die(progress: bool) -> str:
            claimed = await _claim(conn, owner_lock=4242)  # nobody holds it: the owner is dead
            assert claimed["run_id"] == run_id
            if progress:
                await _checkpoint(conn, run_id)
            reaped = await q.fetchall(conn, "reap_lost", max_attempts=3, lost_locks=[])
            assert [r["run_id"] for r in reaped] == [run_id]
            return str(reaped[0]["status"])

        # Six kills, each after a new checkpoint: never out of attempts.
        assert [await die(progress=True) for _ in range(6)] == ["pending"] * 6
        # Then stuck: the attempt that made the last checkpoint counts as the first death at
        # it, so two more deaths there end the run.
        assert await die(progress=False) == "pending"
        assert await die(progress=False) == "error"
        row = await q.fetchone(conn, "get_run_by_id", run_id=run_id)
        assert row is not None and row["attempt"] == 8
        assert row["result"]["__error__"]["error"] == "RunAttemptsExceeded"
        assert "exceeded max attempts (3)" in row["result"]["__error__"]["message"]

        # Without any checkpoint the budget is the plain one: three attempts.
        other = await _insert_pending_run(conn)
        await conn.execute("DELETE FROM run WHERE run_id = %s", (run_id,))
        statuses = []
        for _ in range(3):
            assert (await _claim(conn, owner_lock=4242))["run_id"] == other
            reaped = await q.fetchall(conn, "reap_lost", max_attempts=3, lost_locks=[])
            statuses.append(reaped[0]["status"])
        assert statuses == ["pending", "pending", "error"]
