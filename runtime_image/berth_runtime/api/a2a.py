"""A2A (protocol 0.3.0, JSON-RPC 2.0): `POST /a2a/{assistant_id}` and the agent card.

Mapping, as the Agent Server does it: a `contextId` is a Berth thread and a task is a run on
that thread. `message/send` starts a run and (unless `blocking` is false) waits for it;
`message/stream` answers with SSE frames, one JSON-RPC response each; `tasks/get` and
`tasks/cancel` read and cancel the run. Runs, threads and auth are the REST routes' own.

The message becomes the graph input: text parts make one user message in `messages`, data
parts are merged into the input as they are (for graphs whose state is not a chat).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from a2a.compat.v0_3 import types as a2a
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from berth_runtime.api.assistants import assistant_for
from berth_runtime.api.common import json_response, rt_of
from berth_runtime.api.runs import _create, _get_run
from berth_runtime.api.threads import create_thread
from berth_runtime.models import TERMINAL, RunCreateStateful, ThreadCreate
from berth_runtime.queue.cancel import cancel_run
from berth_runtime.serde import dumps_bytes, loads
from berth_runtime.streams.reader import run_by_id, run_event_items, sse_response, wait_until_done
from berth_runtime.streams.sse import format_sse

router = APIRouter(tags=["a2a"])

PROTOCOL_VERSION = "0.3.0"

# JSON-RPC 2.0 and A2A error codes.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
TASK_NOT_FOUND, TASK_NOT_CANCELABLE, UNSUPPORTED_OPERATION = -32001, -32002, -32004

UNSUPPORTED = frozenset(
    {
        "tasks/resubscribe",
        "tasks/pushNotificationConfig/set",
        "tasks/pushNotificationConfig/get",
        "tasks/pushNotificationConfig/list",
        "tasks/pushNotificationConfig/delete",
        "agent/getAuthenticatedExtendedCard",
    }
)


class RpcError(Exception):
    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


def _error(rpc_id: Any, err: RpcError) -> Response:
    body = {"jsonrpc": "2.0", "id": rpc_id, "error": {"code": err.code, "message": err.message}}
    return json_response(body, err.http_status)


def _dump(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return out


def _params(model: type[BaseModel], params: Any) -> Any:
    try:
        return model.model_validate(params)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RpcError(INVALID_PARAMS, f"Invalid params: {where}: {first['msg']}") from None


def _from_http(e: HTTPException) -> RpcError:
    code = TASK_NOT_FOUND if e.status_code == 404 else INVALID_PARAMS
    return RpcError(code, str(e.detail))


# graph input and output -------------------------------------------------------------------


def graph_input(message: a2a.Message) -> dict[str, Any]:
    texts: list[str] = []
    data: dict[str, Any] = {}
    for part in message.parts:
        inner = part.root
        if isinstance(inner, a2a.TextPart):
            texts.append(inner.text)
        elif isinstance(inner, a2a.DataPart):
            data.update(inner.data)
        else:
            raise RpcError(INVALID_PARAMS, "File parts are not supported; send text or data")
    if texts:
        data.setdefault("messages", []).append({"role": "user", "content": "\n".join(texts)})
    if not data:
        raise RpcError(INVALID_PARAMS, "The message has no text or data parts")
    return data


def _text_of(message: Any) -> str | None:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [b.get("text", "") for b in content if isinstance(b, dict)]
        return "".join(texts)
    return None


def _artifact(result: dict[str, Any]) -> dict[str, Any]:
    """The last message's text when the state is a chat, the whole output besides."""
    values = {k: v for k, v in result.items() if not k.startswith("__")}
    parts: list[dict[str, Any]] = []
    messages = values.get("messages")
    if isinstance(messages, list) and messages:
        text = _text_of(messages[-1])
        if text:
            parts.append({"kind": "text", "text": text})
    parts.append({"kind": "data", "data": values})
    return {"artifactId": str(uuid.uuid4()), "name": "result", "parts": parts}


def _state(run: dict[str, Any]) -> str:
    status, result = run["status"], run.get("result") or {}
    if status == "pending":
        return "submitted"
    if status == "running":
        return "working"
    if status == "success":
        return "input-required" if "__interrupt__" in result else "completed"
    if status == "interrupted":
        return "canceled"
    return "failed"


def _agent_message(text: str, run: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "message",
        "messageId": str(uuid.uuid4()),
        "role": "agent",
        "parts": [{"kind": "text", "text": text}],
        "taskId": str(run["run_id"]),
        "contextId": str(run["thread_id"]),
    }


def _status(run: dict[str, Any]) -> dict[str, Any]:
    state = _state(run)
    status: dict[str, Any] = {"state": state, "timestamp": datetime.now(UTC).isoformat()}
    error = (run.get("result") or {}).get("__error__")
    if state == "failed" and error:
        status["message"] = _agent_message(f"{error.get('error')}: {error.get('message')}", run)
    elif state == "input-required":
        interrupts = run["result"]["__interrupt__"]
        status["message"] = _agent_message(dumps_bytes(interrupts).decode(), run)
    return status


def task_json(run: dict[str, Any]) -> dict[str, Any]:
    task: dict[str, Any] = {
        "kind": "task",
        "id": str(run["run_id"]),
        "contextId": str(run["thread_id"]),
        "status": _status(run),
    }
    result = run.get("result")
    if run["status"] == "success" and isinstance(result, dict):
        task["artifacts"] = [_artifact(result)]
    return task


# methods ---------------------------------------------------------------------------------


async def _start(request: Request, assistant: dict[str, Any], params: Any) -> dict[str, Any]:
    """Find or create the context's thread, then create the run (with the caller's auth)."""
    sent: a2a.MessageSendParams = _params(a2a.MessageSendParams, params)
    body_input = graph_input(sent.message)
    context_id = sent.message.context_id
    try:
        thread_id = uuid.UUID(context_id) if context_id else uuid.uuid4()
    except ValueError:
        raise RpcError(INVALID_PARAMS, f"contextId must be a UUID, got {context_id!r}") from None
    try:
        await create_thread(
            ThreadCreate(thread_id=thread_id, if_exists="do_nothing", graph_id=None), request
        )
        body = RunCreateStateful(assistant_id=str(assistant["assistant_id"]), input=body_input)
        return await _create(request, body, str(thread_id))
    except HTTPException as e:
        raise _from_http(e) from None


async def _find_run(request: Request, assistant: dict[str, Any], params: Any) -> dict[str, Any]:
    query: a2a.TaskIdParams = _params(a2a.TaskIdParams, params)
    try:
        run_id = uuid.UUID(query.id)
    except ValueError:
        raise RpcError(TASK_NOT_FOUND, f"Task {query.id!r} not found") from None
    row = await run_by_id(rt_of(request), run_id)
    if row is None or row["assistant_id"] != assistant["assistant_id"]:
        raise RpcError(TASK_NOT_FOUND, f"Task {query.id!r} not found")
    try:
        return await _get_run(rt_of(request), str(row["thread_id"]), str(run_id), request)
    except HTTPException:
        raise RpcError(TASK_NOT_FOUND, f"Task {query.id!r} not found") from None


async def message_send(request: Request, assistant: dict[str, Any], params: Any) -> Any:
    run = await _start(request, assistant, params)
    config = (params or {}).get("configuration") or {}
    if config.get("blocking") is False:
        return task_json(run)
    final = await wait_until_done(rt_of(request), str(run["run_id"]))
    return task_json(final or run)


async def tasks_get(request: Request, assistant: dict[str, Any], params: Any) -> Any:
    _params(a2a.TaskQueryParams, params)
    return task_json(await _find_run(request, assistant, params))


async def tasks_cancel(request: Request, assistant: dict[str, Any], params: Any) -> Any:
    run = await _find_run(request, assistant, params)
    if run["status"] in TERMINAL:
        raise RpcError(TASK_NOT_CANCELABLE, f"Task {run['run_id']} is already {_state(run)}")
    rt = rt_of(request)
    await cancel_run(rt, run, "interrupt")
    final = await wait_until_done(rt, str(run["run_id"]))
    return task_json(final or {**run, "status": "interrupted"})


METHODS = {"message/send": message_send, "tasks/get": tasks_get, "tasks/cancel": tasks_cancel}


async def _stream(request: Request, rpc_id: Any, run: dict[str, Any]) -> AsyncIterator[bytes]:
    """Task (submitted), working, the result as an artifact, then the final status."""

    def frame(result: dict[str, Any]) -> bytes:
        return format_sse(
            "message", dumps_bytes({"jsonrpc": "2.0", "id": rpc_id, "result": result})
        )

    ids = {"taskId": str(run["run_id"]), "contextId": str(run["thread_id"])}
    yield frame(task_json(run))
    working = {"state": "working", "timestamp": datetime.now(UTC).isoformat()}
    yield frame({"kind": "status-update", **ids, "status": working, "final": False})
    rt = rt_of(request)
    async for _ in run_event_items(rt, str(run["run_id"]), None):
        pass
    final = await run_by_id(rt, run["run_id"]) or {**run, "status": "interrupted"}
    if final["status"] == "success" and isinstance(final.get("result"), dict):
        artifact = _artifact(final["result"])
        yield frame({"kind": "artifact-update", **ids, "artifact": artifact, "lastChunk": True})
    yield frame({"kind": "status-update", **ids, "status": _status(final), "final": True})


@router.post("/a2a/{assistant_id}")
async def a2a_rpc(assistant_id: str, request: Request) -> Response:
    assistant = await assistant_for(request, assistant_id, "read")
    rpc_id: Any = None
    try:
        try:
            payload = loads(await request.body())
        except ValueError:
            raise RpcError(PARSE_ERROR, "Parse error: the body is not JSON", 400) from None
        if not isinstance(payload, dict) or payload.get("jsonrpc") != "2.0":
            raise RpcError(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 object", 400)
        rpc_id = payload.get("id")
        method = payload.get("method")
        if not isinstance(method, str) or not isinstance(rpc_id, str | int):
            raise RpcError(INVALID_REQUEST, "Invalid Request: method and id are required", 400)
        params = payload.get("params")
        if params is not None and not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "Invalid params: params must be an object")
        if method == "message/stream":
            run = await _start(request, assistant, params)
            return sse_response(rt_of(request), _stream(request, rpc_id, run), {})
        if method in UNSUPPORTED:
            raise RpcError(UNSUPPORTED_OPERATION, f"{method} is not supported")
        handler = METHODS.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
        result = await handler(request, assistant, params)
    except RpcError as e:
        return _error(rpc_id, e)
    return json_response({"jsonrpc": "2.0", "id": rpc_id, "result": result})


@router.get("/.well-known/agent-card.json")
async def agent_card(request: Request, assistant_id: str | None = None) -> Response:
    if not assistant_id:
        raise HTTPException(
            400, "assistant_id is required: /.well-known/agent-card.json?assistant_id="
        )
    assistant = await assistant_for(request, assistant_id, "read")
    aid = str(assistant["assistant_id"])
    name = str(assistant["name"])
    description = assistant.get("description") or f"The {name} agent ({assistant['graph_id']})"
    base = str(request.base_url).rstrip("/")
    return json_response(
        {
            "protocolVersion": PROTOCOL_VERSION,
            "name": name,
            "description": description,
            "url": f"{base}/a2a/{aid}",
            "preferredTransport": "JSONRPC",
            "version": str(assistant.get("version") or 1),
            "capabilities": {"streaming": True, "pushNotifications": False},
            "defaultInputModes": ["text/plain", "application/json"],
            "defaultOutputModes": ["text/plain", "application/json"],
            "skills": [
                {
                    "id": f"{aid}-main",
                    "name": name,
                    "description": description,
                    "tags": [str(assistant["graph_id"])],
                }
            ],
        }
    )
