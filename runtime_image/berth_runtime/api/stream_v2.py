"""Protocol v2 (thread-centric) streaming: `POST /threads/{tid}/stream/events` and
`POST /threads/{tid}/commands`, as `langgraph-sdk`'s `client.threads.stream()` uses them.

Events are the thread's runs' own events (the same Redis streams the v1 routes read),
re-shaped as protocol events `{type: "event", method, params: {namespace, timestamp, data},
seq, event_id}`. `seq` comes from the Redis stream id (`ms * 1000 + n`), so it grows across
the runs of a thread and `since` replays from any event still buffered.

Supported commands: `run.start`, `input.respond`, `agent.getTree`, `state.get`. The others
(`subscription.*` are WebSocket-only, `state.fork`, `state.listCheckpoints`, `input.inject`)
answer a `not_supported` error.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from berth_runtime.api.common import json_response, rt_of
from berth_runtime.api.runs import _create
from berth_runtime.api.threads import create_thread, get_thread_row
from berth_runtime.assistants import parse_uuid
from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.models import Command, RunCreateStateful, ThreadCreate
from berth_runtime.serde import dumps_bytes, loads
from berth_runtime.streams.reader import run_by_id, run_event_items, sse_response
from berth_runtime.streams.sse import format_sse

router = APIRouter(tags=["threads"])

CHANNELS = frozenset(
    {"values", "updates", "messages", "tools", "lifecycle", "input", "checkpoints", "tasks"}
    | {"custom"}
)
# What a run started with `run.start` streams (enough for every channel served here).
RUN_MODES: list[Any] = ["values", "updates", "messages-tuple", "custom", "tasks", "checkpoints"]


class EventStreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: Annotated[list[str], Field(min_length=1)]
    namespaces: list[list[str]] | None = None
    depth: Annotated[int, Field(ge=0)] | None = None
    since: Annotated[int, Field(ge=0)] | None = None

    @field_validator("channels")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in CHANNELS and not (c.startswith("custom:") and c[7:])]
        if bad:
            raise ValueError(f"unknown channels {bad}; known: {sorted(CHANNELS)} or custom:<name>")
        return v


class CommandRequest(BaseModel):
    id: Annotated[int, Field(ge=0)]
    method: str
    params: dict[str, Any] = Field(default_factory=dict)


class RunStartParams(BaseModel):
    assistant_id: str
    input: Any = None
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class RespondOne(BaseModel):
    interrupt_id: str
    response: Any = None
    namespace: list[str] = Field(default_factory=list)


class RespondParams(BaseModel):
    interrupt_id: str | None = None
    response: Any = None
    responses: list[RespondOne] | None = None
    update: dict[str, Any] | None = None
    goto: Any = None


class CommandError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# events -------------------------------------------------------------------------------------


def seq_of(stream_id: str) -> int:
    ms, _, n = stream_id.partition("-")
    return int(ms) * 1000 + int(n or 0)


def namespace_matches(ns: list[str], prefixes: list[list[str]] | None, depth: int | None) -> bool:
    if not prefixes:
        return True
    for prefix in prefixes:
        if ns[: len(prefix)] == prefix and (depth is None or len(ns) - len(prefix) <= depth):
            return True
    return False


def channel_of(method: str, data: Any) -> str:
    if method == "custom" and isinstance(data, dict) and data.get("name"):
        return f"custom:{data['name']}"
    return "input" if method == "input.requested" else method


class _Messages:
    """`messages-tuple` chunks as protocol message events (text content blocks)."""

    def __init__(self) -> None:
        self.open: dict[str, str] = {}  # message id -> text so far

    def events(self, data: Any) -> list[dict[str, Any]]:
        msg = data[0] if isinstance(data, list) and data else None
        if not isinstance(msg, dict) or not str(msg.get("type", "")).lower().startswith("ai"):
            return []
        mid = str(msg.get("id") or "message")
        content = msg.get("content")
        text = content if isinstance(content, str) else ""
        if isinstance(content, list):
            text = "".join(b.get("text", "") for b in content if isinstance(b, dict))
        out: list[dict[str, Any]] = []
        if mid not in self.open:
            out.append({"event": "message-start", "role": "ai", "id": mid})
            block = {"type": "text", "text": ""}
            out.append({"event": "content-block-start", "index": 0, "content": block})
            self.open[mid] = ""
        if text:
            self.open[mid] += text
            delta = {"type": "text-delta", "text": text}
            out.append({"event": "content-block-delta", "index": 0, "delta": delta})
        whole = not str(msg.get("type", "")).endswith("Chunk")
        if whole or msg.get("chunk_position") == "last":
            out.extend(self.finish(mid))
        return out

    def finish(self, mid: str) -> list[dict[str, Any]]:
        text = self.open.pop(mid, None)
        if text is None:
            return []
        block = {"type": "text", "text": text}
        return [
            {"event": "content-block-finish", "index": 0, "content": block},
            {"event": "message-finish"},
        ]

    def finish_all(self) -> list[dict[str, Any]]:
        return [ev for mid in list(self.open) for ev in self.finish(mid)]


def _convert(base: str, data: Any, messages: _Messages) -> list[tuple[str, Any]]:
    """One run event as protocol (method, data) pairs."""
    if base in ("values", "checkpoints", "tasks"):
        return [(base, data)]
    if base == "updates" and isinstance(data, dict):
        return [("updates", {"node": node, "values": delta}) for node, delta in data.items()]
    if base == "custom":
        return [("custom", {"payload": data})]
    if base == "messages":
        return [("messages", ev) for ev in messages.events(data)]
    return []


class _Subgraphs:
    """Lifecycle of subgraphs, inferred from the run's `tasks` events as LangGraph's own
    LifecycleTransformer does: `started` at the first task event on a child namespace
    (`node:task_id`), then `completed`/`failed`/`interrupted` when the parent's task with that
    id reports its result; still open at the run's end: closed with the run's outcome."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, ...]] = set()
        self.open: dict[tuple[str, ...], str] = {}

    def on_tasks(self, ns: list[str], data: Any) -> list[tuple[list[str], dict[str, Any]]]:
        if not isinstance(data, dict):
            return []
        key = tuple(ns)
        if "result" in data:
            out = []
            for child, task_id in list(self.open.items()):
                if child[:-1] == key and task_id == data.get("id"):
                    del self.open[child]
                    if data.get("interrupts"):
                        out.append(self._event(child, "interrupted"))
                    elif data.get("error"):
                        out.append(self._event(child, "failed", str(data["error"])))
                    else:
                        out.append(self._event(child, "completed"))
            return out
        if not key or key in self.seen:
            return []
        self.seen.add(key)
        name, sep, task_id = ns[-1].partition(":")
        if not sep:
            return []  # no task id: nothing would close it
        self.open[key] = task_id
        payload: dict[str, Any] = {"event": "started", "namespace": list(ns)}
        graph_name = (data.get("metadata") or {}).get("lc_agent_name") or name
        if graph_name:
            payload["graph_name"] = graph_name
        payload["trigger_call_id"] = task_id
        return [(list(ns), payload)]

    def close_all(self, status: str, error: Any) -> list[tuple[list[str], dict[str, Any]]]:
        if status == "success":
            event, message = "completed", None
        elif status == "interrupted":
            event, message = "interrupted", None
        else:
            event = "failed"
            message = (error.get("message") if isinstance(error, dict) else None) or status
        out = [self._event(ns, event, message) for ns in self.open]
        self.open.clear()
        return out

    @staticmethod
    def _event(
        ns: tuple[str, ...], event: str, error: str | None = None
    ) -> tuple[list[str], dict[str, Any]]:
        payload: dict[str, Any] = {"event": event, "namespace": list(ns)}
        if error is not None:
            payload["error"] = error
        return list(ns), payload


async def _end_events(rt: Runtime, run_id: str, status: str, error: Any) -> list[tuple[str, Any]]:
    row = await run_by_id(rt, uuid.UUID(run_id))
    result = (row or {}).get("result") or {}
    if status == "success" and isinstance(result, dict) and result.get("__interrupt__"):
        out: list[tuple[str, Any]] = []
        for intr in result["__interrupt__"]:
            iid, value = str(intr.get("id")), intr.get("value")
            out.append(("input.requested", {"interrupt_id": iid, "value": value, "payload": value}))
        return [*out, ("lifecycle", {"event": "interrupted"})]
    if status == "success":
        return [("lifecycle", {"event": "completed"})]
    message = error.get("message") if isinstance(error, dict) else None
    if status == "interrupted":
        message = message or "the run was cancelled"
    return [("lifecycle", {"event": "failed", "error": message or status})]


FIRST_RUN = """
SELECT run_id, created_at FROM run
WHERE thread_id = %(tid)s
  AND (%(since_ms)s::float8 IS NULL
       OR ended_at IS NULL OR ended_at >= to_timestamp(%(since_ms)s::float8 / 1000))
ORDER BY (CASE WHEN %(since_ms)s::float8 IS NULL THEN created_at END) DESC NULLS LAST,
         created_at
LIMIT 1
"""


class V2Stream:
    def __init__(self, rt: Runtime, thread_id: uuid.UUID, body: EventStreamRequest) -> None:
        self.rt, self.thread_id, self.body = rt, thread_id, body

    def _frame(
        self, run_id: str, key: str, seq: int, method: str, ns: list[str], data: Any
    ) -> bytes | None:
        if self.body.since is not None and seq <= self.body.since:
            return None
        wanted = channel_of(method, data)
        channels = self.body.channels
        if wanted not in channels and not (wanted.startswith("custom:") and "custom" in channels):
            return None
        if not namespace_matches(ns, self.body.namespaces, self.body.depth):
            return None
        event = {
            "type": "event",
            "method": method,
            "params": {"namespace": ns, "timestamp": seq // 1000, "data": data},
            "seq": seq,
            "event_id": f"{run_id}/{key}",
        }
        return format_sse(method, dumps_bytes(event), str(seq))

    async def _first_run(self) -> Any:
        since_ms = self.body.since // 1000 if self.body.since is not None else None
        async with self.rt.pool.connection() as conn:
            cur = await conn.execute(FIRST_RUN, {"tid": self.thread_id, "since_ms": since_ms})
            return await cur.fetchone()

    async def _next_run(self, after: datetime) -> Any:
        async with self.rt.pool.connection() as conn:
            return await q.fetchone(conn, "thread_run_after", thread_id=self.thread_id, after=after)

    async def frames(self) -> AsyncIterator[bytes]:
        """The first run (see FIRST_RUN), then every later run of the thread, forever."""
        async with self.rt.pool.connection() as conn:
            now = await q.fetchone(conn, "clock")  # before the lookup: no run slips between
        after: datetime = now["now"] if now else datetime.now(UTC)
        row = await self._first_run()
        while True:
            if row is None:
                await asyncio.sleep(min(self.rt.settings.poll_seconds, 0.5))
            else:
                async for frame in self._run_frames(row):
                    yield frame
                after = row["created_at"]
            row = await self._next_run(after)

    async def _run_frames(self, row: Any) -> AsyncIterator[bytes]:
        """A run's events from its start; a replay drops those not after `since` (in `_frame`),
        so per-message state (open text blocks) is rebuilt exactly as it was."""
        run_id = str(row["run_id"])
        run = await run_by_id(self.rt, row["run_id"])
        graph = ((run or {}).get("kwargs") or {}).get("graph_id")
        start_seq = int(row["created_at"].timestamp() * 1000) * 1000
        frame = self._frame(
            run_id, "start", start_seq, "lifecycle", [], {"event": "running", "graph_name": graph}
        )
        if frame:
            yield frame
        messages = _Messages()
        subgraphs = _Subgraphs()
        error: Any = None
        seq = start_seq
        async for event, raw, eid in run_event_items(self.rt, run_id, None):
            seq = seq_of(eid) if eid else seq + 1
            base, *ns = event.split("|")
            if base == "error":
                error = loads(raw)
                continue
            if base == "end":
                status = (loads(raw) or {}).get("status", "success")
                tail: list[tuple[str, list[str], Any]] = [
                    ("lifecycle", child, data) for child, data in subgraphs.close_all(status, error)
                ]
                tail += [("messages", [], ev) for ev in messages.finish_all()]
                tail += [
                    (method, [], data)
                    for method, data in await _end_events(self.rt, run_id, status, error)
                ]
                for i, (method, where, data) in enumerate(tail):
                    frame = self._frame(run_id, f"{eid or seq}/{i}", seq, method, where, data)
                    if frame:
                        yield frame
                return
            payload = loads(raw)
            out: list[tuple[str, list[str], Any]] = []
            if base == "tasks":
                out += [
                    ("lifecycle", child, data) for child, data in subgraphs.on_tasks(ns, payload)
                ]
            out += [(method, list(ns), data) for method, data in _convert(base, payload, messages)]
            for i, (method, where, data) in enumerate(out):
                frame = self._frame(run_id, f"{eid or seq}/{i}", seq, method, where, data)
                if frame:
                    yield frame


@router.post("/threads/{thread_id}/stream/events")
async def stream_events(thread_id: str, body: EventStreamRequest, request: Request) -> Response:
    rt = rt_of(request)
    row = await get_thread_row(rt, thread_id, request, "read")
    return sse_response(rt, V2Stream(rt, row["thread_id"], body).frames(), {})


# commands -----------------------------------------------------------------------------------


def _params(model: type[BaseModel], params: dict[str, Any]) -> Any:
    try:
        return model.model_validate(params)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CommandError("invalid_argument", f"params.{where}: {first['msg']}") from None


async def _run_start(request: Request, thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    p: RunStartParams = _params(RunStartParams, params)
    tid = parse_uuid(thread_id, "thread_id")
    await create_thread(ThreadCreate(thread_id=tid, if_exists="do_nothing"), request)
    body = RunCreateStateful(
        assistant_id=p.assistant_id,
        input=p.input,
        config=p.config or {},
        metadata=p.metadata or {},
        stream_mode=RUN_MODES,
        stream_subgraphs=True,
    )
    run = await _create(request, body, thread_id)
    return {"run_id": str(run["run_id"])}


async def _respond(request: Request, thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    p: RespondParams = _params(RespondParams, params)
    row = await get_thread_row(rt_of(request), thread_id, request, "update")
    if p.responses:
        resume = {r.interrupt_id: r.response for r in p.responses}
    elif p.interrupt_id:
        resume = {p.interrupt_id: p.response}
    else:
        raise CommandError("invalid_argument", "give interrupt_id and response, or responses")
    pending = {str(i.get("id")) for items in (row["interrupts"] or {}).values() for i in items}
    unknown = sorted(set(resume) - pending)
    if unknown:
        raise CommandError("no_such_interrupt", f"no pending interrupt {unknown[0]!r}", 404)
    assistant_id = (row["metadata"] or {}).get("assistant_id")
    if not assistant_id:
        raise CommandError("invalid_argument", "the thread has never run: nothing to resume")
    body = RunCreateStateful(
        assistant_id=str(assistant_id),
        command=Command(resume=resume, update=p.update, goto=p.goto),
        stream_mode=RUN_MODES,
        stream_subgraphs=True,
    )
    run = await _create(request, body, thread_id)
    return {"run_id": str(run["run_id"])}


STATUS = {"busy": "running", "interrupted": "interrupted", "error": "failed", "idle": "completed"}


async def _tree(request: Request, thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    row = await get_thread_row(rt_of(request), thread_id, request, "read")
    graph = (row["metadata"] or {}).get("graph_id") or ""
    return {"tree": {"namespace": [], "status": STATUS[row["status"]], "graph_name": graph}}


async def _state_get(request: Request, thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    row = await get_thread_row(rt_of(request), thread_id, request, "read")
    if params.get("namespace"):
        raise CommandError("no_such_namespace", "only the root namespace [] has state here", 404)
    values = row["values"] or {}
    keys = params.get("keys")
    if isinstance(keys, list) and isinstance(values, dict):
        values = {k: v for k, v in values.items() if k in keys}
    return {"values": values}


COMMANDS = {
    "run.start": _run_start,
    "input.respond": _respond,
    "agent.getTree": _tree,
    "state.get": _state_get,
}
NOT_SUPPORTED = frozenset(
    {
        "subscription.subscribe",
        "subscription.unsubscribe",
        "subscription.reconnect",
        "state.listCheckpoints",
        "state.fork",
        "input.inject",
    }
)


@router.post("/threads/{thread_id}/commands")
async def command(thread_id: str, body: CommandRequest, request: Request) -> Response:
    try:
        if body.method in NOT_SUPPORTED:
            raise CommandError("not_supported", f"{body.method} is not supported over HTTP here")
        handler = COMMANDS.get(body.method)
        if handler is None:
            raise CommandError("unknown_command", f"unknown command {body.method!r}")
        try:
            result = await handler(request, thread_id, body.params)
        except HTTPException as e:
            code = {404: "no_such_run", 403: "permission_denied"}.get(e.status_code)
            raise CommandError(code or "invalid_argument", str(e.detail), e.status_code) from None
        except ValidationError as e:  # the run the params describe is not a valid run
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CommandError("invalid_argument", f"params.{where}: {first['msg']}") from None
    except CommandError as e:
        error = {"type": "error", "id": body.id, "error": e.code, "message": e.message}
        return json_response(error, e.status)
    return json_response({"type": "success", "id": body.id, "result": result})
