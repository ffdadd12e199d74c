"""Leases of sandboxes per scope (a thread or an assistant), released after a quiet TTL.

A lease is taken on first use (the first tool call that needs the sandbox), not when a graph
is built: building happens for state reads too, which must never claim a Pod. The claim is
found or created by the scope's labels, so any replica (or a restarted one) gets the same
sandbox for the same thread. A lease with no call in flight for `ttl_seconds` is released
(its claim deleted; the operator deletes the Pod) unless another replica recorded a use
within the TTL (the resolver's shared activity record).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from berth_runtime.sandbox.backend import ExecutorBackend
from berth_runtime.sandbox.resolvers import (
    Bound,
    ClaimResolver,
    Resolver,
    SandboxUnavailable,
    ScopeKey,
    StaticResolver,
    scope_key,
)
from berth_runtime.sandbox.settings import SandboxSettings, with_env

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
T = TypeVar("T")


@dataclass
class _Lease:
    bound: Bound
    backend: ExecutorBackend
    last_used: float
    """This process's clock at the end of the last call."""
    touched: float = float("-inf")
    """Wall-clock time of the last activity record shared with other replicas."""
    active: int = 0


class SandboxProvider:
    """Scope keys to leased executors; a reaper releases the ones idle for the TTL."""

    def __init__(
        self,
        settings: SandboxSettings,
        resolver: Resolver | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        wall: Callable[[], float] = time.time,
        auto_reap: bool = True,
    ) -> None:
        self.settings = settings
        self._auto_reap = auto_reap
        self._resolver = resolver
        self._clock = clock
        self._wall = wall
        self._touch_every = min(max(settings.ttl_seconds / 10, 1.0), 60.0)
        self._background: set[asyncio.Task[None]] = set()
        self._leases: dict[ScopeKey, _Lease] = {}
        self._acquiring: dict[ScopeKey, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_loop_thread: threading.Thread | None = None

    def key_for(self, config: Mapping[str, Any]) -> ScopeKey:
        if self._resolver is None:
            raise SandboxUnavailable(
                "no sandbox configured: set `sandbox.pool` in langgraph.json (or "
                "BERTH_SANDBOX_POOL), or BERTH_SANDBOX_URL and BERTH_SANDBOX_TOKEN"
            )
        return scope_key(self.settings.scope, config)

    def bound(self, key: ScopeKey) -> Bound | None:
        """The sandbox leased for `key` here, if any."""
        lease = self._leases.get(key)
        return lease.bound if lease is not None else None

    def backend_for(self, key: ScopeKey) -> ExecutorBackend | None:
        lease = self._leases.get(key)
        return lease.backend if lease is not None else None

    def on_loop_thread(self) -> bool:
        """Whether the caller runs on the loop the leases live on."""
        try:
            return self._loop is not None and asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def leased(self) -> dict[ScopeKey, str]:
        """Scope keys currently leased, to their sandbox ids (for tests and logs)."""
        return {k: v.bound.sandbox_id for k, v in self._leases.items()}

    async def _lease(self, key: ScopeKey) -> _Lease:
        lease = self._leases.get(key)
        if lease is not None:
            return lease
        lock = self._acquiring.setdefault(key, asyncio.Lock())
        async with lock:
            lease = self._leases.get(key)
            if lease is None:
                assert self._resolver is not None
                bound = await self._resolver.acquire(key)
                backend = ExecutorBackend(
                    bound.url,
                    bound.token,
                    sandbox_id=bound.sandbox_id,
                    token_grace=bound.token_grace,
                )
                lease = _Lease(bound, backend, self._clock())
                self._leases[key] = lease
                log.info("sandbox %s leased for %s %s", bound.sandbox_id, key.scope, key.value)
            return lease

    @asynccontextmanager
    async def use(self, key: ScopeKey) -> AsyncIterator[ExecutorBackend]:
        """The scope's executor; the lease counts as busy (never reaped) inside the block."""
        if self._auto_reap:
            self.start()
        self._remember_loop()
        lease = await self._lease(key)
        lease.active += 1
        self._maybe_touch(lease)
        try:
            yield lease.backend
        finally:
            lease.active -= 1
            lease.last_used = self._clock()
            self._maybe_touch(lease)

    def _maybe_touch(self, lease: _Lease) -> None:
        """Share the activity (rate-limited, in the background: never in a call's path)."""
        now = self._wall()
        if now - lease.touched < self._touch_every:
            return
        lease.touched = now
        task = asyncio.get_running_loop().create_task(self._touch(lease, now))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _touch(self, lease: _Lease, at: float) -> None:
        assert self._resolver is not None
        try:
            await self._resolver.touch(lease.bound, at)
        except Exception as e:  # the local record still holds; other replicas may reap early
            log.warning("recording activity of sandbox %s failed: %r", lease.bound.sandbox_id, e)

    async def discard(self, key: ScopeKey, backend: ExecutorBackend) -> None:
        """Drop a lease whose executor stopped answering, so the next use takes a new one."""
        lease = self._leases.get(key)
        if lease is None or lease.backend is not backend:
            return  # someone already replaced it
        del self._leases[key]
        log.warning("sandbox %s unreachable; releasing it", lease.bound.sandbox_id)
        await self._release(lease)

    async def _release(self, lease: _Lease) -> None:
        await lease.backend.aclose()
        assert self._resolver is not None
        try:
            await self._resolver.release(lease.bound)
        except Exception as e:  # a failed release must not stop the reaper
            log.warning("releasing sandbox %s failed: %r", lease.bound.sandbox_id, e)

    def _idle(self, key: ScopeKey, now: float) -> _Lease | None:
        lease = self._leases.get(key)
        if lease is None or lease.active or now - lease.last_used < self.settings.ttl_seconds:
            return None
        return lease

    async def _used_elsewhere(self, lease: _Lease) -> bool:
        """Another replica recorded use within the TTL: adopt its time instead of releasing."""
        assert self._resolver is not None
        try:
            remote = await self._resolver.last_activity(lease.bound)
        except Exception as e:
            log.warning("reading activity of sandbox %s failed: %r", lease.bound.sandbox_id, e)
            return True  # unsure: keep it, the next round asks again
        if remote is None:
            return False
        age = self._wall() - remote
        if age >= self.settings.ttl_seconds:
            return False
        lease.last_used = max(lease.last_used, self._clock() - age)
        return True

    async def reap(self) -> list[ScopeKey]:
        """Release every lease idle (nothing in flight) for the TTL here and everywhere."""
        released: list[ScopeKey] = []
        for busy in [lease for lease in self._leases.values() if lease.active]:
            self._maybe_touch(busy)  # a long command is activity too (the pool's idleTimeout)
        for key in list(self._leases):
            lease = self._idle(key, self._clock())
            if lease is None or await self._used_elsewhere(lease):
                continue
            if self._idle(key, self._clock()) is not lease:
                continue  # used while we asked
            del self._leases[key]
            self._acquiring.pop(key, None)
            idle_for = self._clock() - lease.last_used
            log.info("sandbox %s idle for %.0fs; released", lease.bound.sandbox_id, idle_for)
            await self._release(lease)
            released.append(key)
        return released

    # -- lifecycle -------------------------------------------------------------------------
    def _remember_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    def start(self) -> None:
        """Run the reaper on the current loop (the runtime calls this in its lifespan)."""
        self._remember_loop()
        if self._reaper is None and self._resolver is not None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def _reap_forever(self) -> None:
        interval = min(max(self.settings.ttl_seconds / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except Exception:
                log.exception("sandbox reaper failed")

    async def aclose(self) -> None:
        """Stop the reaper and close connections; claims stay (another replica may use them)."""
        if self._reaper is not None:
            self._reaper.cancel()
            with suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for task in list(self._background):
            task.cancel()
        for lease in self._leases.values():
            await lease.backend.aclose()
        self._leases.clear()

    def run_sync(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the provider's loop from a thread that is not that loop.

        Sync tool calls (a graph run with `invoke`) arrive in worker threads; leases live on
        one loop, so their I/O is sent there. With no loop yet, a private one is started.
        """
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            loop = self._start_private_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError(
                "the sandbox backend's sync API was called on the event loop; "
                "use its async methods (run the graph with ainvoke/astream)"
            )
        return asyncio.run_coroutine_threadsafe(make(), loop).result()

    def _start_private_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._own_loop_thread = threading.Thread(target=serve, name="berth-sandbox", daemon=True)
        self._own_loop_thread.start()
        ready.wait()
        self._loop = loop
        return loop


def resolver_for(settings: SandboxSettings) -> Resolver | None:
    """Static executor when a URL is set, claims on the pool when one is named, else none."""
    if settings.static:
        assert settings.url is not None and settings.token is not None
        return StaticResolver(settings.url, settings.token)
    if settings.pool:
        namespace = settings.namespace or _own_namespace()
        return ClaimResolver(
            namespace,
            settings.pool,
            settings.ready_timeout_seconds,
            token_key=settings.token_key,
            token_wait=settings.token_wait_seconds,
            deployment=settings.deployment,
        )
    return None


def _own_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


_provider: SandboxProvider | None = None


def configure(settings: SandboxSettings | None = None) -> SandboxProvider:
    """Install the process-wide provider (`langgraph.json` settings overlaid with env)."""
    global _provider
    merged = with_env(settings or SandboxSettings(), os.environ)
    _provider = SandboxProvider(merged, resolver_for(merged))
    return _provider


def get_provider() -> SandboxProvider:
    """The process-wide provider; configured from the environment alone if nobody did."""
    return _provider if _provider is not None else configure()


async def shutdown() -> None:
    global _provider
    if _provider is not None:
        await _provider.aclose()
        _provider = None
