"""Run routes: create (background, wait, stream), list, get, join, join-stream, cancel, delete."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from berth_runtime.api.assistants import assistant_to_use
from berth_runtime.api.common import json_response, paging_headers, row_json, rt_of
from berth_runtime.assistants import parse_uuid
from berth_runtime.auth.authorize import authorize, visible
from berth_runtime.auth.ownership import stamp_owner
from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.models import (
    TERMINAL,
    RunCreateStateful,
    RunCreateStateless,
    RunsCancel,
    RunStatus,
    _RunCreate,
)
from berth_runtime.queue.cancel import cancel_run as _cancel
from berth_runtime.queue.enqueue import create_run
from berth_runtime.serde import dumps_bytes
from berth_runtime.streams.reader import (
    run_events,
    sse_response,
    wait_until_done,
)
from berth_runtime.streams.sse import format_sse

router = APIRouter(tags=["runs"])


async def _create(request: Request, body: _RunCreate, thread_id: str | None) -> dict[str, Any]:
    """Authorize as `threads.create_run` (the handler may edit the run's metadata), then create."""
    value: dict[str, Any] = {
        "thread_id": thread_id,
        "assistant_id": body.assistant_id,
        "metadata": body.metadata,
        "multitask_strategy": getattr(body, "multitask_strategy", None),
        "if_not_exists": getattr(body, "if_not_exists", None),
        "after_seconds": body.after_seconds,
        "kwargs": {"input": body.input, "config": body.config, "context": body.context},
    }
    filters = await authorize(request, "threads", "create_run", value)
    body.metadata = value["metadata"]
    if thread_id is None and filters:
        body.metadata = stamp_owner(body.metadata, filters)
    if thread_id is not None and filters:
        async with rt_of(request).pool.connection() as conn:
            row = await q.fetchone(conn, "get_thread", thread_id=parse_uuid(thread_id, "thread_id"))
        if row is not None and not visible(row["metadata"], filters):
            raise HTTPException(404, f"Thread '{thread_id}' not found")
    if request.app.state.auth is not None:  # without custom auth, create_run resolves it
        await assistant_to_use(request, body.assistant_id)
    return await create_run(rt_of(request), body, thread_id, user_of(request))


def user_of(request: Request) -> dict[str, Any] | None:
    """The caller as custom auth identified it (None without custom auth)."""
    user = request.scope.get("state", {}).get("berth_user_obj")
    if user is None:
        return None
    return {
        "identity": user.identity,
        "permissions": list(user.permissions),
        "display_name": user.display_name,
    }


def run_json(run: dict[str, Any]) -> dict[str, Any]:
    return row_json(run)


def _locations(run: dict[str, Any], tail: str) -> dict[str, str]:
    base = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return {"Location": f"{base}/{tail}", "Content-Location": base}


async def _thread_visible(
    request: Request, thread_id: Any, action: str, run_metadata: Any = None
) -> bool:
    """Runs are authorized as actions on their thread; a stateless run (temporary or deleted
    thread) by the owner stamped in its own metadata."""
    async with rt_of(request).pool.connection() as conn:
        row = await q.fetchone(conn, "get_thread", thread_id=thread_id)
    if row is None or row["temporary"]:
        meta = dict(run_metadata or {})
        value = {"thread_id": thread_id, "metadata": meta}
        return visible(meta, await authorize(request, "threads", action, value))
    value = {"thread_id": row["thread_id"], "metadata": dict(row["metadata"])}
    return visible(row["metadata"], await authorize(request, "threads", action, value))


async def _get_run(
    rt: Runtime, thread_id: str, run_id: str, request: Request, action: str = "read"
) -> dict[str, Any]:
    tid, rid = parse_uuid(thread_id, "thread_id"), parse_uuid(run_id, "run_id")
    async with rt.pool.connection() as conn:
        row = await q.fetchone(conn, "get_run", run_id=rid, thread_id=tid)
    if row is None or not await _thread_visible(request, tid, action, row["metadata"]):
        raise HTTPException(404, f"Run '{run_id}' not found")
    return dict(row)


class _NewRunStream:
    """The SSE body of a just-created run; cancels the run if the client leaves early and
    asked for `on_disconnect=cancel` (the default is to let the run continue)."""

    def __init__(self, rt: Runtime, run: dict[str, Any], body: _RunCreate) -> None:
        self.rt, self.run, self.body = rt, run, body
        self.finished = False

    async def frames(self) -> AsyncIterator[bytes]:
        run_id = str(self.run["run_id"])
        yield format_sse("metadata", dumps_bytes({"run_id": run_id, "attempt": 1}))
        async for frame in run_events(self.rt, run_id, None, None):
            yield frame
        self.finished = True

    async def on_client_close(self, _message: Any) -> None:
        if not self.finished and self.body.on_disconnect == "cancel":
            await _cancel(self.rt, self.run, "interrupt")

    def response(self) -> Response:
        return sse_response(
            self.rt, self.frames(), _locations(self.run, "stream"), self.on_client_close
        )


def keep_alive_json(
    rt: Runtime,
    result: Callable[[], Awaitable[Any]],
    headers: dict[str, str],
    on_abandon: Callable[[], Awaitable[None]] | None = None,
) -> StreamingResponse:
    """A JSON answer that may take long (a run's final values): a newline every
    `wait_heartbeat_seconds` while `result` runs, then the JSON. Proxies and load balancers
    then see a live connection, and JSON parsers skip the leading whitespace. If the client
    leaves first, `on_abandon` runs (`on_disconnect=cancel`)."""

    async def body() -> AsyncIterator[bytes]:
        task = asyncio.ensure_future(result())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=rt.settings.wait_heartbeat_seconds)
                if done:
                    break
                yield b"\n"
            yield dumps_bytes(task.result())
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                if on_abandon is not None:
                    await on_abandon()

    return StreamingResponse(body(), media_type="application/json", headers=headers)


def _wait_response(rt: Runtime, run: dict[str, Any], body: _RunCreate) -> StreamingResponse:
    """/wait: the run's final values, kept alive while it runs."""

    async def final_values() -> Any:
        final = await wait_until_done(rt, str(run["run_id"]), result_only=True)
        return (final or {}).get("result") or {}

    async def cancel() -> None:
        if body.on_disconnect == "cancel":
            await _cancel(rt, run, "interrupt")

    return keep_alive_json(rt, final_values, _locations(run, "join"), cancel)


@router.post("/threads/{thread_id}/runs")
async def create_background_run(
    thread_id: str, body: RunCreateStateful, request: Request
) -> Response:

    run = await _create(request, body, thread_id)
    return json_response(
        run_json(run), headers={"Content-Location": _locations(run, "")["Content-Location"]}
    )


@router.post("/threads/{thread_id}/runs/stream")
async def create_stream_run(thread_id: str, body: RunCreateStateful, request: Request) -> Response:
    rt = rt_of(request)
    run = await _create(request, body, thread_id)
    return _NewRunStream(rt, run, body).response()


@router.post("/threads/{thread_id}/runs/wait")
async def create_wait_run(thread_id: str, body: RunCreateStateful, request: Request) -> Response:
    rt = rt_of(request)
    run = await _create(request, body, thread_id)
    return _wait_response(rt, run, body)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: RunStatus | None = None,
) -> Response:
    rt = rt_of(request)
    tid = parse_uuid(thread_id, "thread_id")
    async with rt.pool.connection() as conn:
        exists = await q.fetchone(conn, "thread_exists", thread_id=tid) is not None
        rows = await q.fetchall(
            conn, "list_runs", thread_id=tid, status=status, limit=limit, offset=offset
        )
    owner_meta = rows[0]["metadata"] if rows else None  # a temporary thread has one run
    if not exists or not await _thread_visible(request, tid, "read", owner_meta):
        raise HTTPException(404, f"Thread '{thread_id}' not found")
    total = int(rows[0]["total"]) if rows else 0
    return json_response(
        [run_json(dict(r)) for r in rows], headers=paging_headers(total, offset, len(rows))
    )


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, request: Request) -> Response:
    return json_response(run_json(await _get_run(rt_of(request), thread_id, run_id, request)))


@router.delete("/threads/{thread_id}/runs/{run_id}")
async def delete_run(thread_id: str, run_id: str, request: Request) -> Response:
    rt = rt_of(request)
    run = await _get_run(rt, thread_id, run_id, request, "delete")
    async with rt.pool.connection() as conn:
        gone = await q.fetchone(
            conn, "delete_finished_run", run_id=run["run_id"], thread_id=run["thread_id"]
        )
    if gone is None:
        raise HTTPException(409, f"Run {run_id} is {run['status']}: cancel it before deleting it")
    return json_response(None)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, request: Request) -> Response:
    rt = rt_of(request)
    run = await _get_run(rt, thread_id, run_id, request, "read")
    headers = _locations(run, "join")
    if run["status"] in TERMINAL:
        return json_response(run["result"] or {}, headers=headers)

    async def final_values() -> Any:
        final = await wait_until_done(rt, str(run["run_id"]), result_only=True)
        return (final or {}).get("result") or {}

    return keep_alive_json(rt, final_values, headers)


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_run_stream(
    thread_id: str,
    run_id: str,
    request: Request,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    rt = rt_of(request)
    run = await _get_run(rt, thread_id, run_id, request, "read")
    modes = [m for m in stream_mode or [] if m] or None
    return sse_response(
        rt, run_events(rt, str(run["run_id"]), last_event_id, modes), _locations(run, "stream")
    )


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str,
    run_id: str,
    request: Request,
    wait: bool = False,
    action: str = "interrupt",
) -> Response:
    rt = rt_of(request)
    if action not in ("interrupt", "rollback"):
        raise HTTPException(422, f"action must be 'interrupt' or 'rollback', got {action!r}")
    run = await _get_run(rt, thread_id, run_id, request, "update")
    if run["status"] in TERMINAL:
        raise HTTPException(409, f"Run {run_id} is already {run['status']}")
    await _cancel(rt, run, action)
    if wait:
        final = await wait_until_done(rt, str(run["run_id"]))
        return json_response(run_json(final) if final else None)
    return json_response(None, 202)


# stateless runs --------------------------------------------------------------------------------


@router.post("/runs")
async def create_stateless_run(body: RunCreateStateless, request: Request) -> Response:

    run = await _create(request, body, None)
    return json_response(run_json(run))


@router.post("/runs/stream")
async def stream_stateless_run(body: RunCreateStateless, request: Request) -> Response:
    rt = rt_of(request)
    run = await _create(request, body, None)
    return _NewRunStream(rt, run, body).response()


@router.post("/runs/wait")
async def wait_stateless_run(body: RunCreateStateless, request: Request) -> Response:
    rt = rt_of(request)
    run = await _create(request, body, None)
    return _wait_response(rt, run, body)


@router.post("/runs/batch")
async def create_stateless_batch(body: list[RunCreateStateless], request: Request) -> Response:

    if not body:
        raise HTTPException(422, "the batch is empty")
    created = [await _create(request, item, None) for item in body]
    return json_response([run_json(r) for r in created])


@router.post("/runs/cancel")
async def cancel_many(body: RunsCancel, request: Request, action: str = "interrupt") -> Response:
    rt = rt_of(request)
    if action not in ("interrupt", "rollback"):
        raise HTTPException(422, f"action must be 'interrupt' or 'rollback', got {action!r}")
    if body.run_ids is None and body.thread_id is None and body.status is None:
        raise HTTPException(422, "give run_ids, thread_id or status")
    statuses = ["pending", "running"] if body.status in (None, "all") else [body.status]
    async with rt.pool.connection() as conn:
        rows = await q.fetchall(
            conn,
            "find_active_runs",
            run_ids=body.run_ids,
            thread_id=body.thread_id,
            statuses=statuses,
        )
    rows = [
        r for r in rows if await _thread_visible(request, r["thread_id"], "update", r["metadata"])
    ]
    if body.run_ids and len(rows) < len(set(body.run_ids)):
        found = {r["run_id"] for r in rows}
        missing = [str(r) for r in body.run_ids if r not in found]
        raise HTTPException(404, f"Runs not found or not active: {', '.join(missing)}")
    for row in rows:
        await _cancel(rt, dict(row), action)
    return Response(status_code=204)
