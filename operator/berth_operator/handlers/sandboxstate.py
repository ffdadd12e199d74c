"""In-memory view of sandbox Pods, pools and claims shared by the pool daemons and the
claim binder, fed by kopf watch events.

Why a cache: a claim must bind in milliseconds, so it picks a warm Pod from memory
instead of listing Pods. The cache may lag the API server; that is safe because an
adoption carries the Pod's resourceVersion (a stale pick fails with 409 and the next
candidate is tried), and the pool daemon counts from a real LIST plus its expectations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from berth_operator.k8s.client import Api
from berth_operator.render.images import ImageDefaults
from berth_operator.render.sandbox.names import CLAIM_LABEL, FROM_POOL_LABEL

log = logging.getLogger("berth.sandbox")

Key = tuple[str, str]
"""(namespace, name) of a pool or a claim."""

T = TypeVar("T")


def rv_newer(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """Whether ``new`` is not older than ``old`` (etcd resourceVersions are integers)."""
    if old is None:
        return True
    try:
        return int(new["metadata"]["resourceVersion"]) >= int(old["metadata"]["resourceVersion"])
    except (KeyError, ValueError):
        return True


@dataclass
class SandboxState:
    """Everything the sandbox handlers of one operator process share."""

    api: Api | None = None
    images: ImageDefaults = field(default_factory=ImageDefaults)
    """The operator's images for pools whose authProxy names none."""
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=32, thread_name_prefix="sbx")
    )
    fast: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=32, thread_name_prefix="claim")
    )
    """Claim binding only: never queued behind a pool's batch of Pod creates."""
    pods: dict[Key, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """(namespace, pool) -> Pod name -> Pod, for every Pod the pool made (warm or claimed)."""
    bound: dict[Key, dict[str, Any]] = field(default_factory=dict)
    """(namespace, claim) -> its Pod (by the claim label)."""
    pools: dict[Key, dict[str, Any]] = field(default_factory=dict)
    reserved: set[Key] = field(default_factory=set)
    """(namespace, Pod name) being adopted by a claim of this process right now."""
    cold_pending: dict[Key, int] = field(default_factory=dict)
    """(namespace, pool) -> cold Pods being created by claims of this process."""
    wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    adopted_at: dict[Key, float] = field(default_factory=dict)
    """(namespace, pool) -> monotonic time of the last adoption from it."""
    listeners: list[Callable[[str, dict[str, Any]], Awaitable[None]]] = field(default_factory=list)
    """Called with (event type, Pod) after the cache took a Pod event in."""
    pool_listeners: list[Callable[[Key], Awaitable[None]]] = field(default_factory=list)
    """Called with the pool's key after a SandboxPool event."""

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking effect in the thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    async def run_fast(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking effect of the claim fast path in its own thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.fast, lambda: fn(*args, **kwargs))

    def wake(self, pool: Key) -> None:
        """Ask the pool's daemon for a pass now."""
        self.wakers.setdefault(pool, asyncio.Event()).set()

    def waker(self, pool: Key) -> asyncio.Event:
        return self.wakers.setdefault(pool, asyncio.Event())

    # -- Pods ------------------------------------------------------------------------------
    def observe_pod(self, event: str, pod: dict[str, Any]) -> tuple[Key | None, Key | None]:
        """Take one Pod event in; returns the (pool, claim) keys it concerns."""
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        labels = meta.get("labels") or {}
        pool = labels.get(FROM_POOL_LABEL)
        claim = labels.get(CLAIM_LABEL)
        gone = event == "DELETED"
        pool_key = (ns, pool) if pool else None
        claim_key = (ns, claim) if claim else None
        if pool_key is not None:
            pods = self.pods.setdefault(pool_key, {})
            if gone:
                pods.pop(name, None)
            elif rv_newer(pod, pods.get(name)):
                pods[name] = pod
        if claim_key is not None:
            live = self.bound.get(claim_key)
            same = live is not None and live["metadata"].get("uid") == meta.get("uid")
            if gone:
                if same:
                    self.bound.pop(claim_key, None)
            elif not same or rv_newer(pod, live):
                self.bound[claim_key] = pod
        return pool_key, claim_key

    def refresh_pool(self, pool: Key, pods: list[dict[str, Any]], list_rv: str) -> None:
        """Merge a fresh LIST into the cache (newer watch events win; unlisted Pods older
        than the LIST are dropped: their DELETED event was missed)."""
        cached = self.pods.setdefault(pool, {})
        listed = {p["metadata"]["name"]: p for p in pods}
        for name, pod in listed.items():
            if rv_newer(pod, cached.get(name)):
                cached[name] = pod
        for name in [n for n in cached if n not in listed]:
            try:
                stale = int(cached[name]["metadata"]["resourceVersion"]) <= int(list_rv)
            except (KeyError, ValueError):
                stale = True
            if stale:
                cached.pop(name, None)

    async def notify(self, event: str, pod: dict[str, Any]) -> None:
        for listener in self.listeners:
            with contextlib.suppress(Exception):
                await listener(event, pod)
