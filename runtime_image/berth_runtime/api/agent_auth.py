"""Agent Auth routes under `/v2/auth`: the ones `langchain-auth`'s Client calls, the OAuth
callback, per-user listing and revocation, and the token endpoint of sandbox auth proxies.

Who may call what:
- `/authenticate`, `/wait/{auth_id}`, `/keys/rotate`: the deployment's own code, with
  `x-api-key: $BERTH_AGENT_AUTH_API_KEY` (what `langchain_auth.Client(api_key=...)` sends).
- `/callback`: anyone (the provider redirects the user's browser here); the signed `state`
  is the credential.
- `/tokens*`, `/providers*`: the caller as custom auth identifies them (only their own
  tokens), or the API key with `?user_id=`.
- `/sandbox/token`: an auth proxy, with a per-thread HMAC token (see `sandbox_proxy_token`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from berth_runtime.agent_auth.service import AgentAuth, AgentAuthError, Completed
from berth_runtime.api.common import json_response, rt_of
from berth_runtime.db import q
from berth_runtime.models import Command, RunCreateStateful
from berth_runtime.queue.enqueue import create_run

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v2/auth", tags=["agent-auth"])

API_KEY_ENV = "BERTH_AGENT_AUTH_API_KEY"
SELF_AUTHENTICATED = (
    "/v2/auth/authenticate",
    "/v2/auth/wait/",
    "/v2/auth/callback",
    "/v2/auth/sandbox/token",
    "/v2/auth/keys/rotate",
)
STARTED = datetime.now(UTC).isoformat()


def api_key_matches(given: str | None, env: Any = os.environ) -> bool:
    want = env.get(API_KEY_ENV) or ""
    return bool(want) and given is not None and hmac.compare_digest(given.encode(), want.encode())


def bypasses_custom_auth(path: str, headers: dict[str, str]) -> bool:
    """Routes that authenticate themselves skip the custom `@auth.authenticate` handler, and
    so does a `/v2/auth/` request made with the Agent Auth API key."""
    if not path.startswith("/v2/auth/"):
        return False
    return path.startswith(SELF_AUTHENTICATED) or api_key_matches(headers.get("x-api-key"))


def sandbox_proxy_token(key: str, thread_id: str) -> str:
    """What a sandbox's auth proxy presents for a thread: HMAC-SHA256(the deployment's sandbox
    key, "agent-auth-proxy\\0" + thread id), hex. The runtime derives it, as it derives the
    executor token, so no Secret is read to check it."""
    msg = b"agent-auth-proxy\x00" + thread_id.encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()


def _service(request: Request) -> AgentAuth:
    svc: AgentAuth | None = getattr(request.app.state, "agent_auth", None)
    if svc is None:
        raise HTTPException(
            404,
            "Agent Auth is not configured on this deployment: no agent_auth providers "
            "(langgraph.json 'agent_auth', or the AgentDeployment's spec.agentAuth)",
        )
    return svc


def _require_key(request: Request) -> None:
    if not os.environ.get(API_KEY_ENV):
        raise HTTPException(401, f"this endpoint needs {API_KEY_ENV} set on the server")
    if not api_key_matches(request.headers.get("x-api-key")):
        raise HTTPException(401, "missing or wrong x-api-key (the Agent Auth API key)")


def _user(request: Request, user_id: str | None) -> str:
    """The user whose tokens a listing or revocation acts on."""
    if api_key_matches(request.headers.get("x-api-key")):
        if not user_id:
            raise HTTPException(422, "user_id is required with the Agent Auth API key")
        return user_id
    identity = request.scope.get("state", {}).get("berth_user")
    if identity is None:
        raise HTTPException(
            401, "no user: configure custom auth, or call with the Agent Auth API key and user_id"
        )
    if user_id is not None and user_id != identity:
        raise HTTPException(403, "a user may list and revoke only their own tokens")
    return str(identity)


async def _call(coro: Any) -> Any:
    try:
        return await coro
    except AgentAuthError as e:
        raise HTTPException(e.status, e.detail) from None


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(422, "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "body must be a JSON object")
    return body


# --- langchain-auth's endpoints --------------------------------------------------------


@router.post("/authenticate")
async def authenticate(request: Request) -> Response:
    _require_key(request)
    svc = _service(request)
    body = await _body(request)
    user_id, provider = body.get("user_id"), body.get("provider")
    if not isinstance(user_id, str) or not user_id:
        raise HTTPException(422, "user_id is required")
    if not isinstance(provider, str) or not provider:
        raise HTTPException(422, "provider is required")
    if "scopes" not in body:
        raise HTTPException(422, "scopes is required (a list; [] for the provider's defaults)")
    _, scopes = await _call(svc.scopes_for(provider, body["scopes"]))
    token = await _call(svc.token(user_id, provider, scopes))
    if token is not None:
        return json_response({"status": "completed", **token.public()})
    agent_id = body.get("agent_id")
    pending = await _call(
        svc.start_flow(user_id, provider, scopes, assistant_id=str(agent_id) if agent_id else None)
    )
    return json_response(
        {
            "status": "pending",
            "url": pending.url,
            "auth_id": pending.auth_id,
            "provider": provider,
            "scopes": list(scopes),
        }
    )


@router.get("/wait/{auth_id}")
async def wait(
    request: Request, auth_id: str, wait_seconds: float = Query(300, alias="timeout")
) -> Response:
    _require_key(request)
    svc = _service(request)
    if not 0 <= wait_seconds <= 3600:
        raise HTTPException(422, "timeout must be between 0 and 3600 seconds")
    deadline = time.monotonic() + wait_seconds
    while True:
        row = await svc.flow_status(auth_id)
        if row is None:
            return json_response({"status": "not_found"})
        if row["status"] == "completed":
            token = await _call(svc.token(row["user_id"], row["provider"], tuple(row["scopes"])))
            if token is None:  # revoked since
                return json_response({"status": "not_found"})
            return json_response({"status": "completed", **token.public()})
        if row["status"] == "failed":
            return json_response({"status": "failed", "error": row["error"]})
        if row["expired"]:
            return json_response({"status": "not_found", "error": "consent expired"})
        if time.monotonic() >= deadline:
            return json_response({"status": "timeout"})
        await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))


# --- the OAuth redirect target -----------------------------------------------------------


def _page(title: str, text: str, status: int) -> HTMLResponse:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p></body></html>"
    )
    return HTMLResponse(body, status)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.get("/callback")
async def callback(
    request: Request,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    svc = _service(request)
    try:
        if not state:
            raise AgentAuthError(400, "state is missing")
        if error:
            reason = error + (f": {error_description}" if error_description else "")
            done = await svc.deny(state, reason)
            await _resume(
                request, done, {"status": "failed", "auth_id": done.auth_id, "error": reason}
            )
            raise AgentAuthError(400, f"the provider refused consent ({reason})")
        if not code:
            raise AgentAuthError(400, "code is missing")
        done = await svc.complete(state, code)
    except AgentAuthError as e:
        if _wants_json(request):
            return json_response({"detail": e.detail}, e.status)
        return _page("Authorization failed", e.detail, e.status)
    resumed = await _resume(request, done, {"status": "completed", "auth_id": done.auth_id})
    out = {
        "status": "completed",
        "auth_id": done.auth_id,
        "provider": done.provider,
        "scopes": list(done.scopes),
        "resumed_runs": resumed,
    }
    if _wants_json(request):
        return json_response(out)
    return _page(
        "Authorization complete",
        f"Access to {done.provider} was granted. The agent continues; you can close this page.",
        200,
    )


async def _resume(request: Request, done: Completed, value: dict[str, Any]) -> list[dict[str, str]]:
    """Resume the runs paused on this consent: the flow's own thread (the Berth helper tells
    it), else the threads whose interrupt shows this consent URL (langchain-auth's client)
    and whose last run was the same user's."""
    rt = rt_of(request)
    svc = _service(request)
    targets: list[tuple[str, str | None, dict[str, Any] | None]] = []
    if done.thread_id is not None:
        async with rt.pool.connection() as conn:
            last = await q.fetchone(
                conn, "agent_auth_thread_last_run", thread_id=uuid.UUID(done.thread_id)
            )
        if last is not None and last["status"] == "interrupted":
            targets.append((done.thread_id, str(last["assistant_id"]), last["user"]))
    else:
        for row in await svc.interrupted_threads(done.auth_url):
            targets.append((str(row["thread_id"]), str(row["assistant_id"]), row["user"]))
    resumed: list[dict[str, str]] = []
    for thread_id, assistant_id, user in targets:
        if (user or {}).get("identity", done.user_id) != done.user_id:
            continue  # never resume another user's thread
        body = RunCreateStateful(
            assistant_id=assistant_id or "",
            command=Command(resume=value),
            metadata={"agent_auth": {"auth_id": done.auth_id, "provider": done.provider}},
        )
        try:
            run = await create_run(rt, body, thread_id, user)
        except HTTPException as e:
            log.warning("resuming thread %s after consent failed: %s", thread_id, e.detail)
            continue
        resumed.append({"thread_id": thread_id, "run_id": str(run["run_id"])})
    return resumed


# --- per-user tokens and providers --------------------------------------------------------


@router.get("/tokens")
async def list_tokens(request: Request, user_id: str | None = None) -> Response:
    svc = _service(request)
    return json_response(await svc.list_tokens(_user(request, user_id)))


@router.get("/tokens/exists")
async def token_exists(request: Request, provider_id: str, user_id: str | None = None) -> Response:
    svc = _service(request)
    uid = _user(request, user_id)
    await _call(svc.provider(provider_id))
    mine = {t["provider"] for t in await svc.list_tokens(uid)}
    return json_response({"has_token": provider_id in mine})


@router.delete("/tokens")
async def revoke_tokens(request: Request, provider_id: str, user_id: str | None = None) -> Response:
    svc = _service(request)
    uid = _user(request, user_id)
    existed = await _call(svc.revoke(uid, provider_id))
    message = "Tokens revoked" if existed else "No tokens to revoke"
    return json_response({"message": message, "provider_id": provider_id, "revoked": existed})


def _provider_json(p: dict[str, Any]) -> dict[str, Any]:
    """langchain-auth's OAuthProvider fields, plus Berth's."""
    return {
        "id": p["provider_id"],
        "organization_id": "",
        "provider_type": "oauth2",
        "created_at": STARTED,
        "updated_at": STARTED,
        **p,
    }


@router.get("/providers")
async def list_providers(request: Request) -> Response:
    svc = _service(request)
    out = []
    for pid in svc.provider_ids():
        out.append(_provider_json((await _call(svc.provider(pid))).public()))
    return json_response(out)


@router.get("/providers/{provider_id}")
async def get_provider(request: Request, provider_id: str) -> Response:
    svc = _service(request)
    return json_response(_provider_json((await _call(svc.provider(provider_id))).public()))


PROVIDERS_ARE_DECLARED = (
    "providers are declared, not created over the API: langgraph.json 'agent_auth.providers' "
    "or the AgentDeployment's spec.agentAuth.providers"
)


@router.post("/providers")
async def create_provider(request: Request) -> Response:
    raise HTTPException(405, PROVIDERS_ARE_DECLARED)


@router.api_route("/providers/{provider_id}", methods=["PATCH", "DELETE"])
async def change_provider(request: Request, provider_id: str) -> Response:
    raise HTTPException(405, PROVIDERS_ARE_DECLARED)


@router.post("/keys/rotate")
async def rotate_keys(request: Request) -> Response:
    _require_key(request)
    n = await _service(request).reseal_all()
    return json_response({"resealed": n})


# --- sandbox auth proxies -------------------------------------------------------------


@router.get("/sandbox/token")
async def sandbox_token(request: Request, provider: str) -> Response:
    """The token of the thread's user for `provider`, for the auth proxy of the thread's
    sandbox. Authorization: Bearer <sandbox_proxy_token(key, thread)>, X-Berth-Thread-Id."""
    svc = _service(request)
    key = os.environ.get("BERTH_SANDBOX_TOKEN_KEY", "")
    thread_id = request.headers.get("x-berth-thread-id", "")
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not key:
        raise HTTPException(404, "sandbox tokens need BERTH_SANDBOX_TOKEN_KEY on the server")
    try:
        tid = uuid.UUID(thread_id)
    except ValueError:
        raise HTTPException(422, "X-Berth-Thread-Id must be a thread id") from None
    if not given or not hmac.compare_digest(given, sandbox_proxy_token(key, str(tid))):
        raise HTTPException(401, "wrong proxy token for this thread")
    async with rt_of(request).pool.connection() as conn:
        last = await q.fetchone(conn, "agent_auth_thread_user", thread_id=tid)
    if last is None or not last["user"]:
        raise HTTPException(404, f"thread {tid} has no run of an authenticated user")
    user_id = str(last["user"]["identity"])
    token = await _call(svc.token(user_id, provider, ()))
    if token is None:
        raise HTTPException(
            404, f"the thread's user has no {provider!r} token: they have not consented yet"
        )
    data = token.public()
    return json_response(
        {"access_token": data["token"], "token_type": "Bearer", "expires_in": data["expires_in"]}
    )
