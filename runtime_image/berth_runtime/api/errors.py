"""Error responses: always JSON `{"detail": ...}`; 500 only for real bugs (and logged)."""

from __future__ import annotations

import logging

import psycopg
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from langgraph.store.base import InvalidNamespaceError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from berth_runtime.api.common import json_response
from berth_runtime.serde import dumps_bytes, to_jsonable

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return json_response({"detail": exc.detail}, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        msg = first.get("msg", "invalid request")
        detail = f"{loc}: {msg}" if loc else msg
        return json_response({"detail": detail, "errors": to_jsonable(errors)}, 422)

    app.add_middleware(CatchAll)


ORJSON_VALUE_ERRORS = frozenset({"Integer exceeds 64-bit range", "str is not valid UTF-8"})


def client_value_error(exc: BaseException) -> str | None:
    """A message for a value the client sent that the storage cannot hold (found by fuzzing:
    a NUL byte or an out-of-range number for Postgres, an integer beyond 64 bits for JSON,
    an empty namespace label, a store filter operator that does not exist), or None for a real
    bug."""
    if isinstance(exc, psycopg.DataError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"invalid value: {first}"
    # orjson.JSONEncodeError is TypeError itself: match its messages, not every TypeError.
    if isinstance(exc, TypeError) and str(exc) in ORJSON_VALUE_ERRORS:
        return f"invalid value: {exc}"
    if isinstance(exc, InvalidNamespaceError):
        return f"invalid namespace: {exc}"
    # LangGraph's store, for a filter `{"field": {"op": ...}}` whose op is not `$eq`, `$gt`, ...
    if isinstance(exc, ValueError) and str(exc).startswith("Unsupported operator: "):
        return f"invalid filter: {exc}"
    return None


RETRY_AFTER_SECONDS = 5


def dependency_unavailable(exc: BaseException) -> str | None:
    """A message for a dependency that cannot be reached (Postgres down or restarting, the
    pool out of connections, Redis unreachable), answered 503 with Retry-After: the client
    may try again, nothing was half-done that it needs to know about."""
    if isinstance(exc, psycopg.OperationalError):  # includes psycopg_pool.PoolTimeout
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"database unavailable, retry later: {first}"
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return f"redis unavailable, retry later: {exc}"
    return None


class CatchAll:
    """Turn a bug into a logged JSON 500 and keep the connection usable.

    (An `Exception` handler in Starlette re-raises after answering, and uvicorn then drops
    the keep-alive connection.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            status, detail = 500, f"Internal server error: {type(exc).__name__}"
            headers: list[tuple[bytes, bytes]] = []
            bad_value = client_value_error(exc)
            down = dependency_unavailable(exc)
            if bad_value is not None:
                status, detail = 422, bad_value
                log.info("refused %s %s: %s", scope.get("method"), scope.get("path"), detail)
            elif down is not None:
                status, detail = 503, down
                headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
                log.warning("%s %s: %s", scope.get("method"), scope.get("path"), detail)
            else:
                log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                return
            body = dumps_bytes({"detail": detail})
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
