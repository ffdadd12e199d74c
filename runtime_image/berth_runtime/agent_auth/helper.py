"""What a graph calls: `token = await authenticate("calendar", ["calendar.read"])`.

Same shape as `langchain_auth.Client(...).authenticate(provider=, scopes=, user_id=)`, and the
same behaviour inside a run: a stored token comes back at once (refreshed when about to
expire); otherwise the run pauses with an interrupt whose value carries the consent URL
(`auth_url`), and once the user consented, the runtime resumes the run and this call returns
the token. It runs in-process (no HTTP round trip, no API key) and binds the consent to the
run's thread, run and user, which the runtime knows and the HTTP client cannot tell it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from berth_runtime.agent_auth import flow
from berth_runtime.agent_auth.service import AgentAuthError, get_service


class AgentAuthRunError(Exception):
    """The run cannot get a token; the message names the provider and the cause."""


@dataclass(frozen=True)
class AuthResult:
    """langchain-auth's AuthResult: `status` "completed" with `token`, or "pending" with `url`."""

    status: str
    token: str | None = None
    url: str | None = None
    auth_id: str | None = None

    def __repr__(self) -> str:
        return f"AuthResult(status={self.status!r}, token={'***' if self.token else None})"


def _run_config() -> dict[str, Any] | None:
    try:
        from langgraph.config import get_config

        return dict(get_config())
    except RuntimeError:
        return None


async def authenticate(
    provider: str,
    scopes: Sequence[str] | None = None,
    user_id: str | None = None,
    *,
    wait: bool = True,
) -> AuthResult:
    """A token of `user_id` (default: the run's authenticated user) for `provider`.

    Inside a run with `wait=True` (the default) a missing consent pauses the run; outside a
    run, or with `wait=False`, a `pending` result with the URL is returned instead.
    """
    service = get_service()
    config = _run_config()
    conf = dict((config or {}).get("configurable") or {})
    uid = user_id if user_id is not None else conf.get("langgraph_auth_user_id")
    if not uid:
        raise AgentAuthRunError(
            f"Agent Auth ({provider}): no user: the run has no authenticated user (configure "
            "custom auth in langgraph.json) and no user_id was given"
        )
    try:
        _, wanted = await service.scopes_for(provider, list(scopes or []))
        token = await service.token(str(uid), provider, wanted)
        if token is not None:
            return AuthResult("completed", token=token.access_token)
        pending = await service.start_flow(
            str(uid),
            provider,
            wanted,
            thread_id=conf.get("thread_id") if config else None,
            run_id=conf.get("run_id") if config else None,
            assistant_id=conf.get("assistant_id") if config else None,
        )
    except AgentAuthError as e:
        raise AgentAuthRunError(f"Agent Auth ({provider}): {e.detail}") from None
    if config is None or not wait:
        return AuthResult("pending", url=pending.url, auth_id=pending.auth_id)

    from langgraph.types import interrupt

    answer = interrupt(flow.interrupt_payload(provider, wanted, pending.url, pending.auth_id))
    # Resumed: by the callback (consent given), or by hand. Read the store again.
    token = await service.token(str(uid), provider, wanted)
    if token is not None:
        return AuthResult("completed", token=token.access_token)
    # The callback resumes with {"status", "auth_id"} or {"status": "failed", "error"}; the
    # flow it names is the one consented to (this re-execution may have opened another).
    flow_id = answer.get("auth_id") if isinstance(answer, dict) else None
    status = await service.flow_status(str(flow_id or pending.auth_id))
    why = "consent was not completed"
    if isinstance(answer, dict) and answer.get("status") == "failed":
        why = f"consent failed: {answer.get('error')}"
    elif status is not None and status["status"] == "failed":
        why = f"consent failed: {status['error']}"
    elif status is not None and status["expired"]:
        why = "consent expired"
    raise AgentAuthRunError(
        f"Agent Auth ({provider}): {why}; visit {pending.url} and resume (resumed with {answer!r})"
    )
