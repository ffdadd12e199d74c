"""Bearer-token authentication for the auth test deployment."""

from __future__ import annotations

from langgraph_sdk import Auth

auth = Auth()

TOKENS = {"token-alice": "alice", "token-bob": "bob"}


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    if not authorization or not authorization.startswith("Bearer "):
        raise Auth.exceptions.HTTPException(
            401, "missing bearer token", {"WWW-Authenticate": "Bearer"}
        )
    user = TOKENS.get(authorization.removeprefix("Bearer "))
    if user is None:
        raise Auth.exceptions.HTTPException(403, "unknown token")
    return {"identity": user, "permissions": []}
