"""Error responses: always JSON `{"detail": ...}`; 500 only for real bugs (and logged)."""

from __future__ import annotations

import logging

import psycopg
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
            bad_value = client_value_error(exc)
            if bad_value is not None:
                status, detail = 422, bad_value
                log.info("refused %s %s: %s", scope.get("method"), scope.get("path"), detail)
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
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
