"""Write what happened to a run back to Postgres, fenced by (owner, attempt)."""

from __future__ import annotations

import logging
from typing import Any

from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.executor.state import idle_status_for, thread_interrupts
from berth_runtime.serde import dumps_bytes, to_jsonable
from berth_runtime.streams.sse import RESULT_EVENT

log = logging.getLogger(__name__)


async def set_thread_from_snapshot(
    conn: q.Conn,
    thread_id: str,
    snapshot: dict[str, Any] | None,
    error: dict[str, Any] | None,
    failed: bool,
) -> None:
    if snapshot is None:
        await q.execute(conn, "refresh_thread_status", thread_id=thread_id)
        return
    await q.execute(
        conn,
        "set_thread_state",
        thread_id=thread_id,
        values=to_jsonable(snapshot.get("values")),
        interrupts=thread_interrupts(snapshot),
        error=error,
        idle_status=idle_status_for(snapshot, failed),
    )
    await q.execute(conn, "refresh_thread_status", thread_id=thread_id)


async def finish(
    rt: Runtime,
    run: dict[str, Any],
    owner: str,
    status: str,
    output: Any,
    snapshot: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> str | None:
    """Record the final status and the thread's new state.

    Returns the thread's status afterwards (`busy`: another run of the thread is waiting, so a
    worker should be woken for it), or None if the lease was lost and nothing was written.
    """
    thread_id = str(run["thread_id"])
    failed = status in ("error", "timeout")
    if snapshot is None:
        async with rt.pool.connection() as conn, conn.transaction():
            row = await q.fetchone(
                conn,
                "finish_run",
                run_id=run["run_id"],
                owner=owner,
                attempt=run["attempt"],
                status=status,
                result=to_jsonable(output),
            )
            if row is None:
                return None
            await set_thread_from_snapshot(conn, thread_id, snapshot, error, failed)
        return "busy"  # not read back on this rare path: assume a run may be waiting
    # The common case in one statement: the fenced run update, the thread's state and its
    # status (berth_finish_run, migration 0004).
    async with rt.pool.connection() as conn:
        row = await q.fetchone(
            conn,
            "finish_run_set_thread",
            run_id=run["run_id"],
            owner=owner,
            attempt=run["attempt"],
            status=status,
            result=to_jsonable(output),
            values=to_jsonable(snapshot.get("values")),
            interrupts=thread_interrupts(snapshot),
            error=error,
            idle_status=idle_status_for(snapshot, failed),
        )
    return None if row is None or row["thread_status"] is None else str(row["thread_status"])


async def rollback(rt: Runtime, run: dict[str, Any], owner: str) -> bool:
    """Delete the run and everything it checkpointed; False if the lease was lost."""
    async with rt.pool.connection() as conn, conn.transaction():
        row = await q.fetchone(
            conn, "delete_running_run", run_id=run["run_id"], owner=owner, attempt=run["attempt"]
        )
        if row is None:
            return False
        await q.execute(
            conn,
            "delete_run_checkpoints",
            thread_id=str(run["thread_id"]),
            run_id=str(run["run_id"]),
        )
    return True


async def requeue(rt: Runtime, run: dict[str, Any], owner: str) -> bool:
    async with rt.pool.connection() as conn:
        row = await q.fetchone(
            conn, "requeue_run", run_id=run["run_id"], owner=owner, attempt=run["attempt"]
        )
    return row is not None


# A run's result rides along in its event stream (as RESULT_EVENT, which no client sees) when
# it is at most this big, so /wait and /join can answer without reading the run row back.
RESULT_IN_STREAM_MAX_BYTES = 64 * 1024


async def publish_end(
    rt: Runtime, run_id: str, status: str, wake: bool = False, result: Any = None
) -> None:
    """The run's `end` event (and the wake-up, if any) in one round trip; with `result` (what
    the run row's `result` now holds), the result first, if small enough."""
    events = []
    if result is not None:
        encoded = dumps_bytes(to_jsonable(result))
        if len(encoded) <= RESULT_IN_STREAM_MAX_BYTES:
            events.append((RESULT_EVENT, encoded))
    events.append(("end", dumps_bytes({"run_id": run_id, "status": status})))
    await rt.bus.append_events(run_id, events, wake=wake)


async def delete_thread_everywhere(rt: Runtime, thread_id: str, keep_runs: bool = False) -> None:
    """Drop a thread's row, optionally its runs, and its checkpoints."""
    async with rt.pool.connection() as conn, conn.transaction():
        await q.execute(conn, "delete_thread", thread_id=thread_id)
        if not keep_runs:
            await q.execute(conn, "delete_thread_runs", thread_id=thread_id)
            await q.execute(conn, "delete_thread_crons", thread_id=thread_id)
    await rt.checkpointer.adelete_thread(thread_id)
