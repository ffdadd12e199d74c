"""Limits that keep one client from growing the server's memory without bound."""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from berth_runtime.serde import dumps_bytes


class RequestTooLarge(Exception):
    pass


class RequestSizeLimit:
    """Refuse request bodies over `max_bytes` with 413 and a detail, before they are read
    into memory (by Content-Length), or as soon as a chunked body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or ():
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        seen = 0
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer now: the app may turn the error below into an answer of its own
                    # (FastAPI's body parser does: 400), which tracking_send then drops.
                    if not started and not refused:
                        refused = True
                        await self._refuse(send)
                    raise RequestTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(RequestTooLarge):  # answered already
            await self.app(scope, counting_receive, tracking_send)

    async def _refuse(self, send: Send) -> None:
        body = dumps_bytes(
            {"detail": f"request body larger than {self.max_bytes} bytes (BERTH_MAX_REQUEST_BYTES)"}
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _client_key(scope: Scope) -> str:
    """Who a stream belongs to: the user the custom auth handler named (this middleware runs
    inside it), else the peer address (behind a proxy, every client of that proxy)."""
    user = (scope.get("state") or {}).get("berth_user")
    if user:
        return f"user {user}"
    client = scope.get("client")
    return f"address {client[0]}" if client else "unknown"


class StreamsPerClient:
    """At most `limit` open event streams (`.../stream` endpoints) per client at once; the
    next one answers 429 with Retry-After. 0: no limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self.open: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or self.limit <= 0 or not path.endswith("/stream"):
            await self.app(scope, receive, send)
            return
        key = _client_key(scope)
        if self.open.get(key, 0) >= self.limit:
            body = dumps_bytes(
                {
                    "detail": f"{self.limit} event streams are open for {key} already "
                    "(BERTH_MAX_STREAMS_PER_CLIENT): close one or retry later"
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", b"5"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        self.open[key] = self.open.get(key, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.open[key] - 1
            if left:
                self.open[key] = left
            else:
                del self.open[key]
