"""Who is calling: a bearer token per user (the example's stand-in for a real identity
provider). Agent Auth keys OAuth tokens by this identity."""

from __future__ import annotations

from typing import Any

from langgraph_sdk import Auth

auth = Auth()

USERS = {"token-alice": "alice", "token-bob": "bob"}


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    user = USERS.get((authorization or "").removeprefix("Bearer "))
    if user is None:
        raise Auth.exceptions.HTTPException(401, "unknown or missing bearer token")
    return {"identity": user, "permissions": []}


@auth.on.threads
async def own_threads(ctx: Auth.types.AuthContext, value: Any) -> dict[str, str]:
    """Each user sees only their threads (and so only their runs and consents)."""
    if ctx.action == "create" and isinstance(value.get("metadata"), dict):
        value["metadata"]["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}
