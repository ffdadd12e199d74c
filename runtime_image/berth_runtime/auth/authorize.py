"""Call the user's `@auth.on...` handlers: allow, deny, mutate the request, or filter.

A handler gets `ctx` (user, permissions, resource, action) and `value` (the request's data,
which it may change, e.g. to stamp an owner into metadata). It answers None/True (allow),
False (403), or a metadata filter that the resource must match (else it is "not found").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from langgraph_sdk import Auth
from langgraph_sdk.auth.exceptions import HTTPException as AuthHTTPException

from berth_runtime.auth.filters import FilterError, containment, matches

Filter = dict[str, Any]


@dataclass
class User:
    """What `@auth.authenticate` returned, with the BaseUser interface handlers expect."""

    identity: str
    permissions: Sequence[str] = field(default_factory=list)
    display_name: str = ""
    is_authenticated: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key in ("identity", "permissions", "display_name", "is_authenticated"):
            return getattr(self, key)
        return self.extra[key]

    def __contains__(self, key: object) -> bool:
        return key in ("identity", "permissions", "display_name") or key in self.extra

    def __iter__(self) -> Iterator[str]:
        yield from ("identity", "permissions", "display_name", *self.extra)


def user_from(result: Any, identity: str) -> User:
    if isinstance(result, dict):
        extra = {
            k: v for k, v in result.items() if k not in ("identity", "permissions", "display_name")
        }
        return User(
            identity,
            list(result.get("permissions") or []),
            str(result.get("display_name") or identity),
            extra=extra,
        )
    permissions = getattr(result, "permissions", None)
    return User(identity, list(permissions or []), str(getattr(result, "display_name", identity)))


def _handler(auth: Auth, resource: str, action: str) -> Any:
    for key in ((resource, action), (resource, "*"), ("*", action)):
        handlers = auth._handlers.get(key)
        if handlers:
            return handlers[-1]
    return auth._global_handlers[-1] if auth._global_handlers else None


async def authorize(request: Request, resource: str, action: str, value: dict[str, Any]) -> Filter:
    """Run the handler for (resource, action); returns its filter ({} when none)."""
    auth: Auth | None = getattr(request.app.state, "auth", None)
    if auth is None:
        return {}
    handler = _handler(auth, resource, action)
    if handler is None:
        return {}
    user: User = request.scope.get("state", {}).get("berth_user_obj") or User("anonymous")
    ctx = Auth.types.AuthContext(
        user=user,
        permissions=list(user.permissions),
        resource=resource,  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
    )
    try:
        result = await handler(ctx=ctx, value=value)
    except AuthHTTPException as e:
        raise HTTPException(e.status_code, e.detail, dict(e.headers or {})) from None
    if result is False:
        raise HTTPException(403, f"Forbidden: not allowed to {action} {resource}")
    if result is None or result is True:
        return {}
    if not isinstance(result, dict):
        raise TypeError(f"auth handler for {resource}.{action} returned {type(result).__name__}")
    try:
        containment(result)  # validate the operators once
    except FilterError as e:
        raise TypeError(f"auth handler for {resource}.{action}: {e}") from None
    return result


def visible(metadata: dict[str, Any] | None, filters: Filter) -> bool:
    return matches(metadata, filters)
