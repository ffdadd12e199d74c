"""Run the user's `@auth.authenticate` handler before every request but the public ones."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from langgraph_sdk import Auth
from langgraph_sdk.auth.exceptions import HTTPException as AuthHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from berth_runtime.auth.authorize import user_from
from berth_runtime.serde import dumps_bytes

log = logging.getLogger(__name__)

# Probes, server info and API docs stay reachable without credentials.
PUBLIC_PATHS = frozenset({"/ok", "/info", "/metrics", "/docs", "/openapi.json"})


def identity_of(user: Any) -> str:
    """The handler may return a string, a dict with `identity`, or an object with one."""
    if isinstance(user, str):
        return user
    if isinstance(user, dict) and isinstance(user.get("identity"), str):
        return str(user["identity"])
    identity = getattr(user, "identity", None)
    if isinstance(identity, str):
        return identity
    raise TypeError(f"@auth.authenticate returned {type(user).__name__} without an identity")


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        auth: Auth,
        bypass: Callable[[str, dict[str, str]], bool] | None = None,
    ) -> None:
        self.app = app
        # Routes that authenticate themselves (Agent Auth's callback, its API-key routes).
        self.bypass = bypass
        handler = auth._authenticate_handler
        assert handler is not None
        self.handler = handler
        self.params = set(inspect.signature(handler).parameters)

    def _kwargs(self, request: Request) -> dict[str, Any]:
        available: dict[str, Any] = {
            "request": request,
            "path": request.url.path,
            "method": request.method,
            "path_params": dict(request.path_params),
            "query_params": dict(request.query_params),
            "headers": {k: v for k, v in request.headers.raw},
            "authorization": request.headers.get("authorization"),
        }
        return {name: available[name] for name in self.params if name in available}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.bypass is not None and self.bypass(request.url.path, dict(request.headers)):
            await self.app(scope, receive, send)
            return
        try:
            result: Any = self.handler(**self._kwargs(request))
            if inspect.isawaitable(result):
                result = await result
            identity = identity_of(result)
        except AuthHTTPException as e:
            await _deny(send, e.status_code, e.detail, dict(e.headers or {}))
            return
        state = scope.setdefault("state", {})
        state["berth_user"] = identity
        state["berth_user_obj"] = user_from(result, identity)
        await self.app(scope, receive, send)


async def _deny(send: Send, status: int, detail: str | None, headers: dict[str, str]) -> None:
    body = dumps_bytes({"detail": detail})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
