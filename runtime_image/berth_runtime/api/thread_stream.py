"""`GET /threads/{tid}/stream`: follow every run of a thread, one after the other.

Event ids are `<run_id>/<stream id>`, so `Last-Event-ID` resumes inside the run it names and
then goes on with the runs created after it. The stream stays open until the client leaves.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import Response

from berth_runtime.api.common import rt_of
from berth_runtime.api.threads import get_thread_row
from berth_runtime.assistants import parse_uuid
from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.serde import dumps_bytes
from berth_runtime.streams.reader import (
    FOREIGN,
    FROM_START,
    check_stream_id,
    run_event_items,
    sse_response,
)
from berth_runtime.streams.sse import format_sse

router = APIRouter(tags=["threads"])

THREAD_MODES = frozenset({"run_modes", "lifecycle", "state_update"})
LIFECYCLE = frozenset({"metadata", "end", "error"})


def parse_thread_event_id(value: str | None) -> tuple[uuid.UUID | None, str] | None:
    """Where to resume: None (also for `-1`, what the JS SDK sends to replay from the start)
    follows the active run from its first event, then the runs after it. `<run_id>/<stream
    id>` (the ids this stream sends) resumes inside that run; a bare Redis stream id (the
    Agent Server's own form) resumes the active run after it (stream ids are times, so they
    order across runs). Anything else is a 422, as the Agent Server answers."""
    if value is None or value == FROM_START:
        return None
    if check_stream_id(value) == value:
        return None, value
    run_part, sep, stream_part = value.partition("/")
    stream_id = check_stream_id(stream_part)
    if not sep or stream_id in (None, FOREIGN):
        raise HTTPException(422, f"Last-Event-ID {value!r} is not an event id of this stream")
    return parse_uuid(run_part, "Last-Event-ID run id"), stream_id or ""


async def _resume_in_thread(
    rt: Runtime, thread_id: uuid.UUID, resume: tuple[uuid.UUID | None, str] | None
) -> tuple[uuid.UUID | None, str] | None:
    """An id of a run of another thread (or of a run gone since) is not this stream's: follow
    the thread as a new client would, rather than fail the client mid-stream."""
    if resume is None or resume[0] is None:
        return resume
    async with rt.pool.connection() as conn:
        row = await q.fetchone(conn, "get_run", run_id=resume[0], thread_id=thread_id)
    return resume if row is not None else None


RUNS_SINCE = """
SELECT min(created_at) - interval '1 microsecond' AS before FROM run
WHERE thread_id = %(tid)s
  AND (ended_at IS NULL OR ended_at >= to_timestamp(%(ms)s::float8 / 1000))
"""


async def _runs_since(rt: Runtime, thread_id: uuid.UUID, ms: int) -> datetime:
    """Just before the first run of the thread that may have events after `ms`."""
    async with rt.pool.connection() as conn:
        cur = await conn.execute(RUNS_SINCE, {"tid": thread_id, "ms": ms})
        row = await cur.fetchone()
    before = row["before"] if row else None
    return before if before is not None else datetime.now(UTC)


async def _next_run(rt: Runtime, thread_id: uuid.UUID, after: datetime | None) -> Any:
    async with rt.pool.connection() as conn:
        if after is None:
            return await q.fetchone(conn, "thread_active_run", thread_id=thread_id)
        return await q.fetchone(conn, "thread_run_after", thread_id=thread_id, after=after)


class _StateWatch:
    """`state_update` mode: the thread's state whenever it changed (a run ended, or
    POST /threads/{tid}/state), checked between runs and while the thread is idle."""

    def __init__(self, rt: Runtime, thread_id: uuid.UUID) -> None:
        self.rt, self.thread_id = rt, thread_id
        self.seen: Any = None

    async def frame(self) -> bytes | None:
        async with self.rt.pool.connection() as conn:
            row = await q.fetchone(conn, "get_thread", thread_id=self.thread_id)
        if row is None or row["state_updated_at"] == self.seen:
            return None
        first, self.seen = self.seen is None, row["state_updated_at"]
        if first:
            return None  # the state when the client joined is not an update
        data = {
            "thread_id": str(self.thread_id),
            "status": row["status"],
            "values": row["values"],
            "interrupts": row["interrupts"],
            "state_updated_at": row["state_updated_at"],
        }
        return format_sse("state_update", dumps_bytes(data))


async def thread_events(
    rt: Runtime,
    thread_id: uuid.UUID,
    resume: tuple[uuid.UUID | None, str] | None,
    modes: set[str],
    watch: _StateWatch | None = None,
) -> AsyncIterator[bytes]:
    run_id: uuid.UUID | None = None
    cursor: str | None = None
    floor: str | None = None  # a bare stream id resumes every run after it
    after: datetime | None = None
    start = datetime.now(UTC)
    if resume is not None and resume[0] is not None:
        run_id, cursor = resume
        async with rt.pool.connection() as conn:
            row = await q.fetchone(conn, "get_run", run_id=run_id, thread_id=thread_id)
        after = row["created_at"] if row is not None else start
    elif resume is not None:
        # A bare stream id: every event after it, in each run of the thread that may have
        # one (still going, or ended after that time), then the runs to come.
        floor = resume[1]
        after = await _runs_since(rt, thread_id, int(floor.partition("-")[0]))
    else:
        async with rt.pool.connection() as conn:
            now = await q.fetchone(conn, "clock")
        start = now["now"] if now else start
    while True:
        if run_id is None:
            update = await watch.frame() if watch is not None else None
            if update is not None:
                yield update
            row = await _next_run(rt, thread_id, after)
            if row is None and after is None:
                after = start  # nothing active: wait for the next run created from now on
                continue
            if row is None:
                await asyncio.sleep(min(rt.settings.poll_seconds, 0.5))
                continue
            run_id, after = row["run_id"], row["created_at"]
            if "lifecycle" in modes:
                meta = dumps_bytes({"run_id": str(run_id), "status": row["status"]})
                yield format_sse("metadata", meta)
        async for event, data, eid in run_event_items(rt, str(run_id), cursor or floor):
            lifecycle = event.split("|", 1)[0] in LIFECYCLE
            if ("run_modes" in modes and not lifecycle) or ("lifecycle" in modes and lifecycle):
                yield format_sse(event, data, f"{run_id}/{eid}" if eid else None)
        run_id, cursor = None, None


@router.get("/threads/{thread_id}/stream")
async def join_thread_stream(
    thread_id: str,
    request: Request,
    stream_modes: Annotated[list[str] | None, Query()] = None,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    rt = rt_of(request)
    row = await get_thread_row(rt, thread_id, request, "read")
    modes = set(stream_modes or []) | set(stream_mode or []) or {"run_modes"}
    unknown = modes - THREAD_MODES
    if unknown:
        raise HTTPException(422, f"unknown thread stream modes {sorted(unknown)}")
    resume = await _resume_in_thread(rt, row["thread_id"], parse_thread_event_id(last_event_id))
    watch: _StateWatch | None = None
    if "state_update" in modes:
        # The state as of now is the baseline; taken before the response starts, so a client
        # that has the response headers knows later changes will be sent.
        watch = _StateWatch(rt, row["thread_id"])
        await watch.frame()
    return sse_response(rt, thread_events(rt, row["thread_id"], resume, modes, watch), {})
