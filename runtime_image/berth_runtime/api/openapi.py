"""The OpenAPI document at /openapi.json, completed so that a client (or a fuzzer) can rely on
it: every error answer an operation can give is listed with its real body, `{"detail": ...}`,
success answers that are not JSON (SSE, Prometheus text, 204) say so, and operations that read
their body by hand declare it.

The routes answer with `Response` objects (bytes serialized by orjson), so FastAPI knows only
their success code; the rest is declared here, in one place, from what the handlers raise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorResponse",
    "type": "object",
    "description": "Every error answer: a human-readable `detail`; validation errors (422) "
    "also list each problem in `errors`.",
    "properties": {
        "detail": {
            "title": "Detail",
            "anyOf": [{"type": "string"}, {"type": "object"}, {"type": "array"}],
        },
        "errors": {"title": "Errors", "type": "array", "items": {"type": "object"}},
    },
    "required": ["detail"],
}

# The protocol v2 command endpoint answers a failed command with the protocol's error message.
COMMAND_ERROR_SCHEMA: dict[str, Any] = {
    "title": "CommandErrorResponse",
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "id": {},
        "error": {"type": "string"},
        "message": {"type": "string"},
    },
    "required": ["type", "error", "message"],
}
COMMANDS_PATH = "/threads/{thread_id}/commands"

ERROR_DESCRIPTIONS = {
    "400": "Bad request: a combination of fields the operation does not accept",
    "401": "Not authenticated (custom auth, or the Agent Auth API key)",
    "403": "Authenticated but not allowed",
    "404": "Not found: the resource, or one the request refers to (a graph, an assistant, a "
    "thread), does not exist or is not visible to the caller",
    "405": "The operation is not offered by this server",
    "409": "Conflict with the current state (the resource exists, the thread is busy, ...)",
    "413": "The request body is over BERTH_MAX_REQUEST_BYTES",
    "422": "Invalid request: the body or a parameter does not match the schema, or holds a "
    "value that cannot be stored",
    "429": "Shed: too many pending runs (BERTH_MAX_PENDING_RUNS) or open streams of this "
    "client (BERTH_MAX_STREAMS_PER_CLIENT); retry after Retry-After",
    "503": "Postgres or Redis unreachable; retry after Retry-After",
}

# Operations whose success is not `200 application/json`.
SSE = "text/event-stream"
SUCCESS: dict[tuple[str, str], tuple[str, str | None]] = {
    ("get", "/metrics"): ("200", "text/plain"),
    ("put", "/store/items"): ("204", None),
    ("delete", "/store/items"): ("204", None),
    ("post", "/runs/cancel"): ("204", None),
    ("post", "/threads/{thread_id}/runs/stream"): ("200", SSE),
    ("post", "/runs/stream"): ("200", SSE),
    ("get", "/threads/{thread_id}/runs/{run_id}/stream"): ("200", SSE),
    ("get", "/threads/{thread_id}/stream"): ("200", SSE),
    ("post", "/threads/{thread_id}/stream/events"): ("200", SSE),
}
# The A2A endpoint answers JSON-RPC in JSON, or as SSE for `message/stream`.
EXTRA_SUCCESS_CONTENT: dict[tuple[str, str], str] = {("post", "/a2a/{assistant_id}"): SSE}

# Bodies read by hand (not through a pydantic model).
REQUEST_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/a2a/{assistant_id}"): {
        "type": "object",
        "description": "A JSON-RPC 2.0 request of the A2A protocol",
        "properties": {
            "jsonrpc": {"type": "string", "enum": ["2.0"]},
            "id": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
            "method": {
                "type": "string",
                "enum": ["message/send", "message/stream", "tasks/get", "tasks/cancel"],
            },
            "params": {"type": "object"},
        },
        "required": ["jsonrpc", "method"],
    },
    ("post", "/v2/auth/authenticate"): {
        "type": "object",
        "properties": {
            "user_id": {"type": "string"},
            "provider": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "agent_id": {"type": ["string", "null"]},
        },
        "required": ["user_id", "provider", "scopes"],
    },
}

# Operations that create a resource, and the ids their answer holds: each gets OpenAPI links
# to every operation whose path parameters those ids fill (clients and stateful fuzzers follow
# them: create a thread, then read, update, run on and delete it).
PRODUCERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", "/assistants"): ("assistant_id",),
    ("post", "/threads"): ("thread_id",),
    ("post", "/threads/{thread_id}/copy"): ("thread_id",),
    ("post", "/threads/{thread_id}/runs"): ("thread_id", "run_id"),
    ("post", "/runs"): ("thread_id", "run_id"),
    ("post", "/runs/crons"): ("cron_id",),
    ("post", "/threads/{thread_id}/runs/crons"): ("cron_id",),
}
PATH_PARAM = re.compile(r"\{(\w+)\}")
# Streams that follow a thread for as long as the client stays: no link leads to them.
NO_LINKS_TO = frozenset({"/threads/{thread_id}/stream", "/threads/{thread_id}/stream/events"})

# Probes and the document itself: never behind auth, and they fail in no client's way.
PUBLIC = frozenset({"/ok", "/info", "/metrics"})
# Endpoints of the Agent Auth service: an API key (401/403), and 404 where it is not set up.
AGENT_AUTH = "/v2/auth/"


def error_codes(method: str, path: str, custom_auth: bool) -> list[str]:
    """The error statuses an operation can answer with."""
    if path in PUBLIC:
        return ["422"] if path != "/info" else []
    codes = {"400", "404", "422", "503"}
    if method != "get":
        codes |= {"409", "413"}
    if path.endswith("/stream") or (method == "post" and "/runs" in path):
        codes.add("429")
    if custom_auth or path.startswith(AGENT_AUTH) or path.startswith("/a2a/"):
        codes |= {"401", "403"}
    if (method, path) in {
        ("post", "/v2/auth/providers"),
        ("patch", "/v2/auth/providers/{provider_id}"),
        ("delete", "/v2/auth/providers/{provider_id}"),
    }:
        codes.add("405")
    return sorted(codes)


def _complete(schema: dict[str, Any], custom_auth: bool) -> dict[str, Any]:
    schema.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = ERROR_SCHEMA
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses: dict[str, Any] = op.setdefault("responses", {})
            key = (method, path)
            if key in SUCCESS:
                code, media = SUCCESS[key]
                ok = responses.pop("200", {"description": "Successful Response"})
                ok.pop("content", None)
                if media is not None:
                    body = {"type": "string"} if media == "text/plain" else {}
                    ok["content"] = {media: {"schema": body}}
                responses[code] = ok
            if key in EXTRA_SUCCESS_CONTENT:
                responses["200"].setdefault("content", {})[EXTRA_SUCCESS_CONTENT[key]] = {
                    "schema": {}
                }
            if key in REQUEST_BODIES and "requestBody" not in op:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": REQUEST_BODIES[key]}},
                }
            error_body: dict[str, Any] = ERROR_REF
            if path == COMMANDS_PATH:
                error_body = {"anyOf": [ERROR_REF, COMMAND_ERROR_SCHEMA]}
            for code in error_codes(method, path, custom_auth):
                responses[code] = {
                    "description": ERROR_DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": error_body}},
                }
    _add_links(schema)
    _drop_unused(schema)
    return schema


def _add_links(schema: dict[str, Any]) -> None:
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    for (method, path), ids in PRODUCERS.items():
        producer = paths.get(path, {}).get(method)
        if producer is None:
            continue
        links: dict[str, Any] = {}
        for other_path, ops in paths.items():
            params = set(PATH_PARAM.findall(other_path))
            if other_path in NO_LINKS_TO or not params <= set(ids) or ids[-1] not in params:
                continue
            for op in ops.values():
                if "operationId" not in op:
                    continue
                links[op["operationId"]] = {
                    "operationId": op["operationId"],
                    "parameters": {p: f"$response.body#/{p}" for p in sorted(params)},
                }
        if links:
            producer["responses"]["200"]["links"] = links


def _drop_unused(schema: dict[str, Any]) -> None:
    """FastAPI's own 422 models are no longer referenced: drop them."""
    components = schema["components"]["schemas"]
    text = repr(schema["paths"])
    for name in ("HTTPValidationError", "ValidationError"):
        if name in components and not re.search(rf"/{name}'", text):
            others = repr({k: v for k, v in components.items() if k != name})
            if f"/{name}'" not in others:
                del components[name]


def install_openapi(app: FastAPI, *, custom_auth: bool) -> None:
    """Serve the completed document (built once, on the first request for it)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(build(), custom_auth)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
