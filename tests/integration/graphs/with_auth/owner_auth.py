"""Multi-tenant policy: every resource is stamped with its owner and filtered by it."""

from __future__ import annotations

from typing import Any

from langgraph_sdk import Auth

auth = Auth()

TOKENS = {"token-alice": "alice", "token-bob": "bob"}


@auth.authenticate
async def authenticate(authorization: str | None) -> str:
    user = TOKENS.get((authorization or "").removeprefix("Bearer "))
    if user is None:
        raise Auth.exceptions.HTTPException(401, "unknown token")
    return user


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: Any) -> dict[str, str]:
    if ctx.action == "create" and isinstance(value.get("metadata"), dict):
        value["metadata"]["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on.assistants.delete
async def assistants_are_forever(ctx: Auth.types.AuthContext, value: Any) -> bool:
    return False


@auth.on.store
async def own_namespace(ctx: Auth.types.AuthContext, value: Any) -> None:
    value["namespace"] = (ctx.user.identity, *value["namespace"])
