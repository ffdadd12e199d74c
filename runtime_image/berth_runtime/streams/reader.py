"""Read a run's events back: from its Redis stream, or from Postgres when Redis cannot say."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent

from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.models import TERMINAL
from berth_runtime.serde import dumps_bytes
from berth_runtime.streams.sse import RESULT_EVENT, format_sse, wanted


async def run_by_id(rt: Runtime, run_id: Any) -> dict[str, Any] | None:
    async with rt.pool.connection() as conn:
        row = await q.fetchone(conn, "get_run_by_id", run_id=run_id)
    return dict(row) if row else None


StreamItem = tuple[str, bytes, str | None]  # (event, JSON data, stream id)

STREAM_ID = re.compile(r"\d+-\d+")
# What the JS SDK's useStream sends to replay a run from its first event on reconnect.
FROM_START = "-1"


# Stands for a Last-Event-ID that names no event of this stream (another stream's id, a
# client's own counter): the client has seen none of ours, but wants what comes next.
FOREIGN = "foreign"


def check_stream_id(value: str | None) -> str | None:
    """Where to resume a run's stream: None from the start (also `-1`), a Redis stream id
    after that event, FOREIGN for anything else. Like the Agent Server, an id that is not of
    this stream is no error: what is buffered is skipped and the stream goes on from there."""
    if value is None or value == FROM_START:
        return None
    if not STREAM_ID.fullmatch(value):
        return FOREIGN
    return value


async def run_event_items(
    rt: Runtime, run_id: str, last_event_id: str | None, with_result: bool = False
) -> AsyncIterator[StreamItem]:
    """A run's events from its Redis stream, ending with `end`.

    Postgres is checked whenever the stream is quiet: if the run is over and Redis has no `end`
    (Redis down, or the stream expired), the final values come from the run row instead.
    The run's result entry (RESULT_EVENT) is only passed on `with_result`.
    """
    foreign = last_event_id if check_stream_id(last_event_id) == FOREIGN else None
    last_event_id = check_stream_id(last_event_id)
    buffered_until: tuple[int, int] | None = None
    if foreign is not None:
        newest = await rt.bus.last_event(run_id)
        buffered_until = _stream_pos(newest[0]) if newest is not None else None
        last_event_id = None
    cursor = last_event_id or "0-0"
    poll = min(rt.settings.poll_seconds, 0.5)
    saw_any = False
    while True:
        entries = await rt.bus.read_events(run_id, cursor, block_ms=1000)
        if entries is None:
            await asyncio.sleep(poll)
        for eid, event, data in entries or []:
            cursor = eid
            if foreign is not None and _skipped_as_seen(eid, foreign, buffered_until):
                if event == "end":
                    return  # the client counts the whole finished stream as seen
                continue
            saw_any = True
            if event != RESULT_EVENT or with_result:
                yield event, data, eid
            if event == "end":
                return
        if entries:
            continue
        row = await run_by_id(rt, uuid.UUID(run_id))
        if row is not None and row["status"] not in TERMINAL:
            continue
        if row is not None and entries is not None:
            # Over in Postgres: give the worker's last events a moment to land in Redis.
            late = await rt.bus.read_events(run_id, cursor, block_ms=300)
            for eid, event, data in late or []:
                cursor, saw_any = eid, True
                if event != RESULT_EVENT or with_result:
                    yield event, data, eid
                if event == "end":
                    return
        if not saw_any and last_event_id and await _saw_end(rt, run_id, cursor):
            return  # the client already has every event, `end` included: nothing to repeat
        status = row["status"] if row else "interrupted"
        result = (row or {}).get("result") or {}
        if not saw_any and isinstance(result, dict):
            values = {k: v for k, v in result.items() if k != "__error__"}
            yield "values", dumps_bytes(values), None
            if "__error__" in result:
                yield "error", dumps_bytes(result["__error__"]), None
        yield "end", dumps_bytes({"run_id": run_id, "status": status}), None
        return


def _skipped_as_seen(eid: str, foreign: str, buffered_until: tuple[int, int] | None) -> bool:
    """Whether a buffered event counts as already seen by a client that sent a foreign id.

    The reference replays the buffered events whose id sorts after the client's id as text
    (so `0...` replays all, `not-an-id` none) and passes on every event that comes later.
    """
    if buffered_until is None or _stream_pos(eid) > buffered_until:
        return False
    return eid <= foreign


def _stream_pos(eid: str) -> tuple[int, int]:
    ms, _, seq = eid.partition("-")
    return int(ms), int(seq or 0)


async def _saw_end(rt: Runtime, run_id: str, cursor: str) -> bool:
    """Whether the buffer still holds the run's `end` at or before the client's cursor."""
    last = await rt.bus.last_event(run_id)
    if last is None or last[1] != "end" or not STREAM_ID.fullmatch(cursor):
        return False
    return _stream_pos(last[0]) <= _stream_pos(cursor)


async def run_events(
    rt: Runtime,
    run_id: str,
    last_event_id: str | None,
    modes: list[str] | None,
) -> AsyncIterator[bytes]:
    """SSE frames of a run, filtered to the requested stream modes."""
    async for event, data, eid in run_event_items(rt, run_id, last_event_id):
        if wanted(event, modes):
            yield format_sse(event, data, eid)


def sse_response(
    rt: Runtime,
    frames: AsyncIterator[bytes],
    headers: dict[str, str],
    on_client_close: Callable[[Any], Awaitable[None]] | None = None,
) -> EventSourceResponse:
    return EventSourceResponse(
        frames,
        headers=headers,
        client_close_handler_callable=on_client_close,
        ping=int(max(1, rt.settings.sse_heartbeat_seconds)),
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
    )


async def wait_until_done(
    rt: Runtime, run_id: str, result_only: bool = False
) -> dict[str, Any] | None:
    """Block until the run is over; its final row (None if it was rolled back).

    `result_only`: the caller reads only `status` and `result`; when the worker put the result
    in the run's stream, that is the answer and Postgres is not asked.
    """
    result: bytes | None = None
    status: str | None = None
    async for event, data, _ in run_event_items(rt, run_id, None, with_result=result_only):
        if event == RESULT_EVENT:
            result = data
        elif event == "end":
            status = orjson.loads(data).get("status")
    if result is not None and status is not None:
        return {"run_id": run_id, "status": status, "result": orjson.loads(result)}
    return await run_by_id(rt, uuid.UUID(run_id))
