"""Where a scope's sandbox comes from: a SandboxClaim on a pool, or one fixed executor.

Besides acquire and release, a resolver records activity where every replica can see it
(the claim's `berth.dev/last-activity` annotation, which the operator's `idleTimeout` also
reads), so a replica does not release a sandbox that another replica is still using.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from berth_runtime.sandbox.settings import Scope

log = logging.getLogger(__name__)

EXECUTOR_PORT = 8790
ACTIVITY_ANNOTATION = "berth.dev/last-activity"
DEFAULT_TOKEN_WAIT_SECONDS = 90.0
"""How long after binding a 401 is taken for the executor's stale token file (see
`ExecutorBackend`'s `token_grace`): kubelet refreshes downwardAPI files on its sync period."""


RENEWABLE_REASONS = frozenset({"Expired", "SandboxLost", "TokenMismatch"})
"""Claims that can never serve again: released, and a fresh one made in their place."""


class SandboxUnavailable(RuntimeError):
    """No sandbox can be had for this run (not configured, no scope id, claim failed)."""


@dataclass(frozen=True)
class ScopeKey:
    """Which sandbox: one per thread, or one per assistant."""

    scope: Scope
    value: str


def scope_key(scope: Scope, config: Mapping[str, Any]) -> ScopeKey:
    """The run's thread or assistant id from its config (`configurable`, as Berth sets it)."""
    conf = config.get("configurable") or {}
    name = "thread_id" if scope == "thread" else "assistant_id"
    value = conf.get(name) or (config.get("metadata") or {}).get(name)
    if not value:
        raise SandboxUnavailable(
            f"a {scope}-scoped sandbox needs `{name}` in the run's config; "
            "call the backend from inside a run (a tool or a node)"
        )
    return ScopeKey(scope, str(value))


@dataclass(frozen=True)
class Bound:
    """An executor to talk to, and what to hand back to release it."""

    url: str
    token: str
    sandbox_id: str
    handle: Any = None
    token_grace: float = 0.0
    """Seconds during which a 401 may still be the executor's stale token file (retried)."""


class Resolver(Protocol):
    """Turns a scope into a running executor, and gives it back."""

    async def acquire(self, key: ScopeKey) -> Bound: ...

    async def release(self, bound: Bound) -> None: ...

    async def touch(self, bound: Bound, at: float) -> None:
        """Record use at wall-clock time `at` (epoch seconds) where other replicas see it."""

    async def last_activity(self, bound: Bound) -> float | None:
        """The latest recorded use by any replica (epoch seconds), if known."""


class StaticResolver:
    """One executor for every scope (`BERTH_SANDBOX_URL`): local runs and tests."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    async def acquire(self, key: ScopeKey) -> Bound:
        return Bound(self.url, self.token, f"static:{self.url}")

    async def release(self, bound: Bound) -> None:
        return None

    async def touch(self, bound: Bound, at: float) -> None:
        return None

    async def last_activity(self, bound: Bound) -> float | None:
        return None


def executor_url(pod_ip: str, port: int = EXECUTOR_PORT) -> str:
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    return f"http://{host}:{port}"


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def token_grace(bound_at: str, wait: float, now: float) -> float:
    """What is left of the `wait` seconds after binding (all of it when the time is unknown)."""
    at = parse_rfc3339(bound_at) if bound_at else None
    age = max(now - at, 0.0) if at is not None else 0.0
    return max(wait - age, 0.0)


class ClaimResolver:
    """A SandboxClaim on the pool per scope (the operator binds a warm Pod to it).

    The claim's executor token is derived from `token_key` (`BERTH_SANDBOX_TOKEN_KEY`), so
    no Secret is read; see `berth_runtime.sandbox.claims`.
    """

    def __init__(
        self,
        namespace: str,
        pool: str,
        ready_timeout: float,
        claims: Any = None,
        executor_port: int = EXECUTOR_PORT,
        *,
        token_key: str | None = None,
        token_wait: float = DEFAULT_TOKEN_WAIT_SECONDS,
        deployment: str | None = None,
    ) -> None:
        self.namespace, self.pool, self.ready_timeout = namespace, pool, ready_timeout
        self._deployment = deployment
        self._claims = claims
        self._port = executor_port
        self._token_key = token_key
        self._token_wait = token_wait

    def _api(self) -> Any:
        if self._claims is None:
            from berth_runtime.sandbox.claims import default_claims

            self._claims = default_claims()
        return self._claims

    async def acquire(self, key: ScopeKey) -> Bound:
        from berth_runtime.sandbox.claims import ClaimFailed

        if not self._token_key:
            raise SandboxUnavailable(
                "BERTH_SANDBOX_TOKEN_KEY is not set: claimed sandboxes need the key the "
                "runtime derives executor tokens from (the operator sets it from Secret "
                "<deployment>-sandbox-key when spec.sandbox is set)"
            )
        api = self._api()
        scope = {"thread_id": key.value} if key.scope == "thread" else {"assistant_id": key.value}
        for attempt in range(2):
            claim = await api.ensure_claim(
                self.namespace,
                self.pool,
                token_key=self._token_key,
                deployment=self._deployment,
                **scope,
            )
            try:
                bound = await api.wait_ready(claim, self.ready_timeout)
                break
            except ClaimFailed as e:
                if e.reason not in RENEWABLE_REASONS or attempt:
                    raise SandboxUnavailable(str(e)) from e
                # Finished (Expired, SandboxLost: the claim of a lease a restarted process
                # held) or made under another key (the key Secret was replaced): it never
                # becomes usable again, so start over with a fresh claim.
                await api.release(claim)
            except TimeoutError as e:
                # Nobody holds a lease on it: bound later, it would keep a Pod until the
                # pool's lifecycle limits. The next call makes a new one.
                await self._release_quietly(api, claim)
                raise SandboxUnavailable(str(e)) from e
        return Bound(
            executor_url(bound.pod_ip, self._port),
            bound.token,
            f"{claim.namespace}/{claim.name}",
            claim,
            token_grace(bound.bound_at, self._token_wait, time.time()),
        )

    @staticmethod
    async def _release_quietly(api: Any, claim: Any) -> None:
        try:
            await api.release(claim)
        except Exception as e:  # the timeout is the error to report
            log.warning("releasing sandbox claim %s failed: %r", getattr(claim, "name", claim), e)

    async def release(self, bound: Bound) -> None:
        await self._api().release(bound.handle)

    async def touch(self, bound: Bound, at: float) -> None:
        await self._api().touch(bound.handle, at)

    async def last_activity(self, bound: Bound) -> float | None:
        value = await self._api().last_activity(bound.handle)
        return float(value) if value is not None else None
