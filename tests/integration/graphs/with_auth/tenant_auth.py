"""The Agent Server docs' multi-tenant policy: every resource is stamped with its owner on
create and every other action is filtered by `{"owner": user}`; store namespaces start with
the user's identity. BERTH_TEST_LEAKY_AUTH names resources (comma-separated: threads, store,
...) the policy forgets to filter (the deliberately broken variant the isolation test must
catch)."""

from __future__ import annotations

import os
from typing import Any

from langgraph_sdk import Auth

auth = Auth()

TOKENS = {"token-alice": "alice", "token-bob": "bob", "token-carol": "carol"}
LEAKY = set(os.environ.get("BERTH_TEST_LEAKY_AUTH", "").split(","))


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    user = TOKENS.get((authorization or "").removeprefix("Bearer "))
    if user is None:
        raise Auth.exceptions.HTTPException(401, "unknown token")
    return {"identity": user, "permissions": []}


@auth.on
async def add_owner(ctx: Auth.types.AuthContext, value: Any) -> dict[str, str] | None:
    if ctx.resource in LEAKY and ctx.action != "create":
        return None
    filters = {"owner": ctx.user.identity}
    if isinstance(value, dict):
        metadata = value.setdefault("metadata", {})
        if isinstance(metadata, dict):
            metadata.update(filters)
    return filters


@auth.on.store()
async def own_namespace(ctx: Auth.types.AuthContext, value: Any) -> None:
    if "store" in LEAKY:
        return
    value["namespace"] = (ctx.user.identity, *value["namespace"])
