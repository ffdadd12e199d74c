"""Agent Auth's effect layer: stored tokens, consent flows, refresh, revocation.

Decisions are `flow`'s (pure); this module reads and writes Postgres (named SQL in
`db/queries/agent_auth.sql`) and calls providers (`oauth`). Token values are sealed before
they reach a query and opened only to be handed to the caller; they are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from berth_runtime.agent_auth import flow, oauth
from berth_runtime.agent_auth.config import AgentAuthConfig, Provider
from berth_runtime.agent_auth.crypto import Sealer
from berth_runtime.db import q

log = logging.getLogger(__name__)


class AgentAuthError(Exception):
    """A request Agent Auth refuses: `status` is the HTTP status, the message the detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Token:
    provider: str
    access_token: str
    scopes: tuple[str, ...]
    expires_at: datetime | None

    def __repr__(self) -> str:
        return f"Token(provider={self.provider!r}, scopes={self.scopes}, expires={self.expires_at})"

    def public(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "token": self.access_token,
            "token_type": "Bearer",
            "scopes": list(self.scopes),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "expires_in": flow.seconds_left(self.expires_at, datetime.now(UTC)),
        }


@dataclass(frozen=True)
class Pending:
    auth_id: str
    url: str
    provider: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Completed:
    auth_id: str
    provider: str
    user_id: str
    scopes: tuple[str, ...]
    thread_id: str | None
    run_id: str | None
    assistant_id: str | None
    auth_url: str


class AgentAuth:
    def __init__(self, config: AgentAuthConfig, sealer: Sealer, pool: Any) -> None:
        self.config = config
        self.sealer = sealer
        self.pool = pool
        self.http = httpx.AsyncClient(follow_redirects=False)
        self._discovered: dict[str, Provider] = {}
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self.http.aclose()

    # --- providers -------------------------------------------------------------------

    def provider_ids(self) -> list[str]:
        return sorted(self.config.providers)

    async def provider(self, provider_id: str) -> Provider:
        if provider_id not in self.config.providers:
            raise AgentAuthError(
                404,
                f"unknown provider {provider_id!r}; configured: {', '.join(self.provider_ids())}",
            )
        if provider_id not in self._discovered:
            async with self._lock:
                if provider_id not in self._discovered:
                    try:
                        found = await oauth.discover(self.http, self.config.providers[provider_id])
                    except oauth.ProviderError as e:
                        raise AgentAuthError(502, str(e)) from None
                    self._discovered[provider_id] = found
        return self._discovered[provider_id]

    async def scopes_for(
        self, provider_id: str, requested: Any
    ) -> tuple[Provider, tuple[str, ...]]:
        """The provider and the scopes to hold: the requested ones plus its defaults."""
        if requested is None:
            requested = []
        if isinstance(requested, str) or not isinstance(requested, list | tuple):
            raise AgentAuthError(422, "scopes must be a list of strings")
        if not all(isinstance(s, str) and s and " " not in s for s in requested):
            raise AgentAuthError(422, "scopes must be non-empty strings without spaces")
        provider = await self.provider(provider_id)
        scopes = flow.merge_scopes(requested, provider.scopes)
        if not scopes:
            raise AgentAuthError(
                422,
                f"no scopes: the request names none and provider {provider_id!r} has no "
                "default scopes",
            )
        return provider, scopes

    # --- tokens ----------------------------------------------------------------------

    async def token(self, user_id: str, provider_id: str, scopes: tuple[str, ...]) -> Token | None:
        """The user's token for these scopes, refreshed when it is about to expire; None when
        the user must consent (no token, fewer scopes, or a refresh the provider refused)."""
        provider = await self.provider(provider_id)
        async with self.pool.connection() as conn:
            row = await q.fetchone(
                conn, "agent_auth_get_token", user_id=user_id, provider=provider_id
            )
        if row is None or not flow.covers(row["scopes"], scopes):
            return None
        now = datetime.now(UTC)
        if not flow.needs_refresh(row["expires_at"], now, self.config.refresh_margin_seconds):
            return self._token(provider_id, row)
        return await self._refresh(provider, user_id)

    def _token(self, provider_id: str, row: Mapping[str, Any]) -> Token:
        return Token(
            provider_id,
            self.sealer.open(row["access_token"]),
            tuple(row["scopes"]),
            row["expires_at"],
        )

    async def _refresh(self, provider: Provider, user_id: str) -> Token | None:
        pid = provider.provider_id
        async with self.pool.connection() as conn, conn.transaction():
            # The row lock makes one replica refresh while the others wait and then read
            # the new token: rotating refresh tokens are used once.
            row = await q.fetchone(conn, "agent_auth_lock_token", user_id=user_id, provider=pid)
            if row is None:
                return None
            now = datetime.now(UTC)
            if not flow.needs_refresh(row["expires_at"], now, self.config.refresh_margin_seconds):
                return self._token(pid, row)
            if row["refresh_token"] is None:
                if row["expires_at"] is not None and row["expires_at"] <= now:
                    await q.execute(conn, "agent_auth_delete_token", user_id=user_id, provider=pid)
                    return None
                return self._token(pid, row)  # still valid a little while; nothing to refresh
            started = time.monotonic()
            try:
                fresh = await oauth.refresh(
                    self.http,
                    provider,
                    self.sealer.open(row["refresh_token"]),
                    tuple(row["scopes"]),
                )
            except oauth.ProviderError as e:
                if e.invalid_grant:
                    log.info(
                        "refresh of %s for a user was refused (invalid_grant): consent again", pid
                    )
                    await q.execute(conn, "agent_auth_delete_token", user_id=user_id, provider=pid)
                    return None
                raise AgentAuthError(502, str(e)) from None
            await self._put(conn, user_id, pid, fresh)
            log.info("refreshed the %s token in %.0f ms", pid, (time.monotonic() - started) * 1000)
            return Token(pid, fresh.access_token, fresh.scopes, fresh.expires_at)

    async def _put(self, conn: q.Conn, user_id: str, provider_id: str, ts: flow.TokenSet) -> None:
        await q.execute(
            conn,
            "agent_auth_put_token",
            user_id=user_id,
            provider=provider_id,
            scopes=list(ts.scopes),
            access_token=self.sealer.seal(ts.access_token),
            refresh_token=None if ts.refresh_token is None else self.sealer.seal(ts.refresh_token),
            expires_at=ts.expires_at,
        )

    async def list_tokens(self, user_id: str) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            rows = await q.fetchall(conn, "agent_auth_list_tokens", user_id=user_id)
        return [
            {
                "provider": r["provider"],
                "scopes": list(r["scopes"]),
                "expires_at": r["expires_at"].isoformat() if r["expires_at"] else None,
                "refreshable": r["refreshable"],
                "created_at": r["created_at"].isoformat(),
                "updated_at": r["updated_at"].isoformat(),
            }
            for r in rows
        ]

    async def revoke(self, user_id: str, provider_id: str) -> bool:
        """Delete the user's token and revoke it at the provider (best effort)."""
        provider = await self.provider(provider_id)
        async with self.pool.connection() as conn:
            rows = await q.fetchall(
                conn, "agent_auth_delete_token", user_id=user_id, provider=provider_id
            )
        for row in rows:
            if row["refresh_token"] is not None:
                await oauth.revoke(
                    self.http, provider, self.sealer.open(row["refresh_token"]), "refresh_token"
                )
            await oauth.revoke(
                self.http, provider, self.sealer.open(row["access_token"]), "access_token"
            )
        return bool(rows)

    async def reseal_all(self) -> int:
        """Re-encrypt every stored token under the newest key (after a key rotation)."""
        n = 0
        async with self.pool.connection() as conn, conn.transaction():
            for row in await q.fetchall(conn, "agent_auth_all_tokens"):
                await q.execute(
                    conn,
                    "agent_auth_reseal_token",
                    user_id=row["user_id"],
                    provider=row["provider"],
                    access_token=self.sealer.rotate(row["access_token"]),
                    refresh_token=None
                    if row["refresh_token"] is None
                    else self.sealer.rotate(row["refresh_token"]),
                )
                n += 1
        return n

    # --- consent flows ----------------------------------------------------------------

    async def start_flow(
        self,
        user_id: str,
        provider_id: str,
        scopes: tuple[str, ...],
        thread_id: str | None = None,
        run_id: str | None = None,
        assistant_id: str | None = None,
    ) -> Pending:
        """A consent URL for (user, provider, scopes), bound to the thread and run asking.
        An open flow of the same user, provider and thread that covers the scopes is reused,
        so a retried run or a second tool call shows the same URL."""
        provider = await self.provider(provider_id)
        async with self.pool.connection() as conn:
            open_flow = await q.fetchone(
                conn,
                "agent_auth_pending_flow",
                user_id=user_id,
                provider=provider_id,
                scopes=list(scopes),
                thread_id=None if thread_id is None else uuid.UUID(thread_id),
            )
            if open_flow is not None:
                return Pending(
                    str(open_flow["auth_id"]), open_flow["auth_url"], provider_id, scopes
                )
            auth_id = uuid.uuid4()
            binding = flow.Binding(auth_id, user_id, provider_id, scopes, thread_id, run_id)
            pkce = flow.new_pkce()
            state = flow.state_for(binding, self.sealer.mac)
            url = flow.authorization_url(provider, scopes, state, pkce)
            await q.execute(
                conn,
                "agent_auth_insert_flow",
                auth_id=auth_id,
                user_id=user_id,
                provider=provider_id,
                scopes=list(scopes),
                code_verifier=self.sealer.seal(pkce.verifier),
                auth_url=url,
                thread_id=None if thread_id is None else uuid.UUID(thread_id),
                run_id=None if run_id is None else uuid.UUID(run_id),
                assistant_id=assistant_id,
                ttl_seconds=self.config.consent_ttl_seconds,
            )
            await q.execute(conn, "agent_auth_delete_old_flows")
        return Pending(str(auth_id), url, provider_id, scopes)

    async def _flow_for_state(self, state: str) -> tuple[Mapping[str, Any], flow.Binding]:
        try:
            auth_id = flow.state_auth_id(state)
        except flow.FlowError as e:
            raise AgentAuthError(400, f"invalid state: {e}") from None
        async with self.pool.connection() as conn:
            row = await q.fetchone(conn, "agent_auth_get_flow", auth_id=auth_id)
        if row is None:
            raise AgentAuthError(400, "invalid state: no such consent flow")
        binding = flow.Binding(
            row["auth_id"],
            row["user_id"],
            row["provider"],
            tuple(row["scopes"]),
            None if row["thread_id"] is None else str(row["thread_id"]),
            None if row["run_id"] is None else str(row["run_id"]),
        )
        macs = [(lambda m, i=i: self.sealer.mac(m, i)) for i in range(len(self.sealer.state_keys))]
        try:
            flow.check_state(state, binding, macs)
        except flow.FlowError as e:
            raise AgentAuthError(400, f"invalid state: {e}") from None
        if row["status"] != "pending":
            raise AgentAuthError(409, f"consent flow {row['auth_id']} is already {row['status']}")
        if row["expired"]:
            raise AgentAuthError(
                400,
                f"consent expired: flow {row['auth_id']} is older than the consent TTL; "
                "run the agent again for a new URL",
            )
        return row, binding

    async def complete(self, state: str, code: str) -> Completed:
        """Exchange the code and store the tokens, or store nothing."""
        row, binding = await self._flow_for_state(state)
        provider = await self.provider(binding.provider)
        try:
            tokens = await oauth.exchange_code(
                self.http, provider, code, self.sealer.open(row["code_verifier"]), binding.scopes
            )
        except oauth.ProviderError as e:
            async with self.pool.connection() as conn:
                await q.execute(conn, "agent_auth_fail_flow", auth_id=binding.auth_id, error=str(e))
            raise AgentAuthError(400, f"code exchange failed: {e}") from None
        async with self.pool.connection() as conn, conn.transaction():
            done = await q.fetchone(conn, "agent_auth_complete_flow", auth_id=binding.auth_id)
            if done is None:  # expired or completed while the code was exchanged
                raise AgentAuthError(409, f"consent flow {binding.auth_id} expired or completed")
            await self._put(conn, binding.user_id, binding.provider, tokens)
        log.info("consent flow %s for %s completed", binding.auth_id, binding.provider)
        return Completed(
            str(binding.auth_id),
            binding.provider,
            binding.user_id,
            tokens.scopes,
            binding.thread_id,
            binding.run_id,
            row["assistant_id"],
            row["auth_url"],
        )

    async def deny(self, state: str, error: str) -> Completed:
        """The provider sent the user back with an error (e.g. access_denied)."""
        row, binding = await self._flow_for_state(state)
        async with self.pool.connection() as conn:
            await q.execute(conn, "agent_auth_fail_flow", auth_id=binding.auth_id, error=error)
        return Completed(
            str(binding.auth_id),
            binding.provider,
            binding.user_id,
            binding.scopes,
            binding.thread_id,
            binding.run_id,
            row["assistant_id"],
            row["auth_url"],
        )

    async def flow_status(self, auth_id: str) -> Mapping[str, Any] | None:
        try:
            aid = uuid.UUID(auth_id)
        except ValueError:
            return None
        async with self.pool.connection() as conn:
            return await q.fetchone(conn, "agent_auth_get_flow", auth_id=aid)

    async def interrupted_threads(self, auth_url: str) -> list[Mapping[str, Any]]:
        async with self.pool.connection() as conn:
            return list(await q.fetchall(conn, "agent_auth_interrupted_threads", auth_url=auth_url))


_service: AgentAuth | None = None


def set_service(service: AgentAuth | None) -> None:
    global _service
    _service = service


def get_service() -> AgentAuth:
    if _service is None:
        raise RuntimeError(
            "Agent Auth is not configured: add 'agent_auth.providers' to langgraph.json "
            "(or spec.agentAuth to the AgentDeployment)"
        )
    return _service
