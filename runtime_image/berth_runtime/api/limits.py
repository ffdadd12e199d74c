"""Limits that keep one client from growing the server's memory without bound."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from berth_runtime.serde import dumps_bytes

DRAIN_BYTES = 1024 * 1024
DRAIN_SECONDS = 5.0


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
                if int(value) <= DRAIN_BYTES:
                    await self._drain(receive)
                await self._refuse(send)
                return
        seen = 0
        started = refused = False
        more = True

        async def counting_receive() -> Message:
            nonlocal seen, refused, more
            message = await receive()
            more = message["type"] == "http.request" and bool(message.get("more_body"))
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # The app may turn the error below into an answer of its own (FastAPI's
                    # body parser does: 400), which tracking_send drops; the 413 goes out
                    # once the rest of the body has been read (see _drain).
                    refused = refused or not started
                    raise RequestTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(RequestTooLarge):  # answered below
            await self.app(scope, counting_receive, tracking_send)
        if refused:
            if more:
                await self._drain(receive)
            await self._refuse(send)

    async def _drain(self, receive: Receive) -> None:
        """Read (and drop) what the client is still sending, up to DRAIN_BYTES, before the
        413 goes out: a client still writing when the answer comes and the connection closes
        would see it reset instead of reading the 413."""
        drained = 0
        with contextlib.suppress(TimeoutError):
            while drained < DRAIN_BYTES:
                message = await asyncio.wait_for(receive(), DRAIN_SECONDS)
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body"):
                    return

    async def _refuse(self, send: Send) -> None:
        detail = f"request body larger than {self.max_bytes} bytes (BERTH_MAX_REQUEST_BYTES)"
        await _answer(send, 413, detail, (b"connection", b"close"))


async def _answer(send: Send, status: int, detail: str, *headers: tuple[bytes, bytes]) -> None:
    """A JSON `{"detail": ...}` answer sent straight from a middleware."""
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
            detail = (
                f"{self.limit} event streams are open for {key} already "
                "(BERTH_MAX_STREAMS_PER_CLIENT): close one or retry later"
            )
            await _answer(send, 429, detail, (b"retry-after", b"5"))
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
