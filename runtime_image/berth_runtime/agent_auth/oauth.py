"""HTTP to OAuth providers: OIDC discovery, code exchange, refresh, revocation (thin)."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from berth_runtime.agent_auth import flow
from berth_runtime.agent_auth.config import Provider

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(15.0)


class ProviderError(Exception):
    """The provider refused or could not be reached; the message names the provider."""

    def __init__(self, provider: str, message: str, *, invalid_grant: bool = False) -> None:
        super().__init__(f"provider {provider!r}: {message}")
        self.invalid_grant = invalid_grant


async def discover(client: httpx.AsyncClient, provider: Provider) -> Provider:
    """Fill the endpoints a provider left to OIDC discovery (explicit values win)."""
    if provider.issuer is None or (provider.authorization_endpoint and provider.token_endpoint):
        return provider
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        r = await client.get(url, timeout=TIMEOUT)
        r.raise_for_status()
        doc = r.json()
    except (httpx.HTTPError, ValueError) as e:
        raise ProviderError(provider.provider_id, f"OIDC discovery at {url} failed: {e}") from None
    if not isinstance(doc, dict):
        raise ProviderError(provider.provider_id, f"OIDC discovery at {url}: not an object")
    authz = provider.authorization_endpoint or doc.get("authorization_endpoint")
    token = provider.token_endpoint or doc.get("token_endpoint")
    revoke = provider.revocation_endpoint or doc.get("revocation_endpoint")
    if not isinstance(authz, str) or not isinstance(token, str) or not authz or not token:
        raise ProviderError(
            provider.provider_id, f"OIDC discovery at {url} names no authorization/token endpoint"
        )
    return dataclasses.replace(
        provider,
        authorization_endpoint=authz,
        token_endpoint=token,
        revocation_endpoint=revoke if isinstance(revoke, str) and revoke else None,
    )


async def _token_call(
    client: httpx.AsyncClient,
    provider: Provider,
    form: dict[str, str],
    auth: Any,
    requested: tuple[str, ...],
    previous_refresh: str | None = None,
) -> flow.TokenSet:
    assert provider.token_endpoint is not None
    try:
        r = await client.post(
            provider.token_endpoint,
            data=form,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )
    except httpx.HTTPError as e:
        raise ProviderError(provider.provider_id, f"token endpoint unreachable: {e!r}") from None
    try:
        body = r.json()
    except ValueError:
        raise ProviderError(
            provider.provider_id, f"token endpoint answered {r.status_code} without JSON"
        ) from None
    if not isinstance(body, dict):
        raise ProviderError(provider.provider_id, "token endpoint answered a non-object")
    if r.status_code >= 400 and "error" not in body:
        raise ProviderError(provider.provider_id, f"token endpoint answered {r.status_code}")
    try:
        return flow.token_set(body, datetime.now(UTC), requested, previous_refresh)
    except flow.FlowError as e:
        raise ProviderError(
            provider.provider_id, str(e), invalid_grant=body.get("error") == "invalid_grant"
        ) from None


async def exchange_code(
    client: httpx.AsyncClient, provider: Provider, code: str, verifier: str, scopes: tuple[str, ...]
) -> flow.TokenSet:
    form, auth = flow.code_request(provider, code, verifier)
    return await _token_call(client, provider, form, auth, scopes)


async def refresh(
    client: httpx.AsyncClient, provider: Provider, refresh_token: str, scopes: tuple[str, ...]
) -> flow.TokenSet:
    form, auth = flow.refresh_request(provider, refresh_token)
    return await _token_call(client, provider, form, auth, scopes, previous_refresh=refresh_token)


async def revoke(client: httpx.AsyncClient, provider: Provider, token: str, hint: str) -> bool:
    """RFC 7009 revocation, best effort: False (and a log line without the token) on failure."""
    if not provider.revocation_endpoint:
        return False
    form, auth = flow.client_auth(provider, {"token": token, "token_type_hint": hint})
    try:
        r = await client.post(provider.revocation_endpoint, data=form, auth=auth, timeout=TIMEOUT)
    except httpx.HTTPError as e:
        log.warning("revoking a %s token at %s failed: %r", hint, provider.provider_id, e)
        return False
    if r.status_code >= 400:
        log.warning(
            "revoking a %s token at %s answered %s", hint, provider.provider_id, r.status_code
        )
        return False
    return True
