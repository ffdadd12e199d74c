"""The authorization-code flow with PKCE, decided without I/O (pure).

- `new_pkce()`: a code verifier and its S256 challenge (RFC 7636).
- `state_for()` / `check_state()`: the `state` sent to the provider is the flow's id and an
  HMAC over what the flow is bound to (flow id, user, provider, scopes, thread, run), so a
  state cannot be forged, replayed for another flow, or moved to another user or thread.
- `authorization_url()`: the consent URL.
- `token_set()`: a token endpoint response as what gets stored.
- `needs_refresh()`, `covers()`: whether a stored token serves a request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from berth_runtime.agent_auth.config import Provider


class FlowError(ValueError):
    """A request or response of the flow that cannot be used; the message says why."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str
    method: str = "S256"


def challenge_of(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode()).digest())


def new_pkce(token_bytes: Callable[[int], bytes] = secrets.token_bytes) -> Pkce:
    verifier = _b64(token_bytes(48))  # 64 characters, inside RFC 7636's 43..128
    return Pkce(verifier, challenge_of(verifier))


@dataclass(frozen=True)
class Binding:
    """What a consent flow is bound to."""

    auth_id: uuid.UUID
    user_id: str
    provider: str
    scopes: tuple[str, ...]
    thread_id: str | None = None
    run_id: str | None = None

    def message(self) -> bytes:
        parts = [
            str(self.auth_id),
            self.user_id,
            self.provider,
            " ".join(sorted(self.scopes)),
            self.thread_id or "",
            self.run_id or "",
        ]
        return "\x00".join(parts).encode()


def state_for(binding: Binding, mac: Callable[[bytes], bytes]) -> str:
    return f"{binding.auth_id.hex}.{_b64(mac(binding.message()))}"


def state_auth_id(state: str) -> uuid.UUID:
    """The flow id a state names (not yet verified)."""
    head, dot, sig = state.partition(".")
    if not dot or not sig:
        raise FlowError("malformed state")
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        raise FlowError("malformed state") from None


def check_state(state: str, binding: Binding, macs: Sequence[Callable[[bytes], bytes]]) -> None:
    """Raise FlowError unless `state` was issued for exactly this binding (any current key)."""
    if state_auth_id(state) != binding.auth_id:
        raise FlowError("state does not belong to this flow")
    given = state.partition(".")[2]
    for mac in macs:
        if hmac.compare_digest(given, _b64(mac(binding.message()))):
            return
    raise FlowError("state signature does not match: forged, or bound to another flow")


def merge_scopes(requested: Iterable[str], defaults: Iterable[str]) -> tuple[str, ...]:
    """The scopes to ask for: the request's plus the provider's defaults, in order, once."""
    out: list[str] = []
    for s in (*requested, *defaults):
        if s not in out:
            out.append(s)
    return tuple(out)


def covers(granted: Iterable[str], requested: Iterable[str]) -> bool:
    return set(requested) <= set(granted)


def authorization_url(provider: Provider, scopes: Sequence[str], state: str, pkce: Pkce) -> str:
    if not provider.authorization_endpoint:
        raise FlowError(f"provider {provider.provider_id!r} has no authorization endpoint")
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": provider.redirect_url,
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
        **dict(provider.authorize_params),
    }
    parts = urlsplit(provider.authorization_endpoint)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def code_request(provider: Provider, code: str, verifier: str) -> tuple[dict[str, str], Any]:
    """Form fields and HTTP basic auth (or None) of the code exchange."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": provider.redirect_url,
        "code_verifier": verifier,
    }
    return client_auth(provider, form)


def refresh_request(provider: Provider, refresh_token: str) -> tuple[dict[str, str], Any]:
    return client_auth(provider, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def client_auth(provider: Provider, form: dict[str, str]) -> tuple[dict[str, str], Any]:
    method = provider.token_endpoint_auth_method
    if method == "client_secret_basic":
        return form, (provider.client_id, provider.client_secret or "")
    form = {**form, "client_id": provider.client_id}
    if method == "client_secret_post":
        form["client_secret"] = provider.client_secret or ""
    return form, None


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    token_type: str
    refresh_token: str | None
    expires_at: datetime | None
    scopes: tuple[str, ...]

    def __repr__(self) -> str:  # never print a token
        return (
            f"TokenSet(type={self.token_type!r}, scopes={self.scopes}, expires={self.expires_at})"
        )


def token_set(
    body: Mapping[str, Any],
    now: datetime,
    requested: Sequence[str],
    previous_refresh: str | None = None,
) -> TokenSet:
    """A token endpoint's JSON answer (RFC 6749 5.1). `scope` absent: the requested scopes
    were granted (5.1); `refresh_token` absent on a refresh: the old one stays valid (6)."""
    if "error" in body:
        desc = body.get("error_description")
        raise FlowError(f"token endpoint: {body['error']}" + (f": {desc}" if desc else ""))
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise FlowError("token endpoint answered no access_token")
    token_type = str(body.get("token_type") or "Bearer")
    if token_type.lower() != "bearer":
        raise FlowError(f"token endpoint answered token_type {token_type!r}; only Bearer is used")
    expires_in = body.get("expires_in")
    expires_at = None
    if expires_in is not None:
        try:
            expires_at = now + timedelta(seconds=float(expires_in))
        except (TypeError, ValueError):
            raise FlowError(f"token endpoint answered expires_in {expires_in!r}") from None
    scope = body.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) and scope else tuple(requested)
    refresh = body.get("refresh_token")
    return TokenSet(
        access_token=access,
        token_type="Bearer",
        refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
        expires_at=expires_at,
        scopes=scopes,
    )


def needs_refresh(expires_at: datetime | None, now: datetime, margin_seconds: float) -> bool:
    return expires_at is not None and expires_at - now <= timedelta(seconds=margin_seconds)


def seconds_left(expires_at: datetime | None, now: datetime) -> int | None:
    return None if expires_at is None else max(0, int((expires_at - now).total_seconds()))


def interrupt_payload(
    provider: str, scopes: Sequence[str], url: str, auth_id: str
) -> dict[str, Any]:
    """What a run pausing for consent shows: langchain-auth's interrupt shape plus `auth_id`."""
    return {
        "message": f"OAuth authentication required for provider '{provider}'.",
        "auth_url": url,
        "provider": provider,
        "scopes": list(scopes),
        "auth_id": auth_id,
    }
