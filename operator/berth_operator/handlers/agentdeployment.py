"""kopf handlers of AgentDeployment: wiring only; decisions live in render/.

Triggers of a reconcile pass (all end in ``k8s.reconcile.reconcile``):
- create / update / resume of the AgentDeployment (errors are retried by kopf);
- any event on a child we manage (drift repair: an edited or deleted child);
- a periodic timer (children the operator does not watch, references that appear);
- a short re-check while the object is still converging.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kopf

from berth_operator import metrics
from berth_operator.api.agentdeployment import KIND, PLURAL
from berth_operator.api.common import GROUP, VERSION
from berth_operator.handlers import agentcron
from berth_operator.handlers.coalesce import Coalescer, Key
from berth_operator.handlers.options import FINALIZER, STATE_PREFIX, Options
from berth_operator.k8s.client import Api, ApiError, load_client
from berth_operator.k8s.reconcile import Outcome, reconcile
from berth_operator.render.meta import MANAGER

log = logging.getLogger("berth.operator")

MANAGED = {"app.kubernetes.io/managed-by": MANAGER}
WATCHED_CHILDREN = (
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
)


def owner_of(body: Any) -> str | None:
    """The AgentDeployment owning a child, from its controller owner reference."""
    for ref in body.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("kind") == KIND and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"):
            return str(ref["name"])
    return None


def configure(settings: kopf.OperatorSettings, o: Options) -> None:
    """kopf settings: Berth's own finalizer and annotation prefix, timeouts, peering."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STATE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STATE_PREFIX, key="last-handled-configuration"
    )
    settings.watching.server_timeout = o.watch_server_timeout
    settings.watching.client_timeout = o.watch_client_timeout
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.scanning.disabled = True  # CRDs are installed first; no cluster-wide CRD watch
    settings.posting.level = logging.WARNING  # only problems become Events
    settings.posting.reporting_component = MANAGER
    settings.execution.max_workers = o.workers
    settings.peering.mandatory = not o.standalone
    settings.peering.lifetime = o.peering_lifetime
    settings.peering.stealth = True


class Operator:
    """State of one operator process, and its handlers."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.api: Api | None = None
        self.executor = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="rec")
        self.coalescer = Coalescer(self._run)
        self.passes = 0
        self._full: set[Key] = set()

    # -- the reconcile pass, off the event loop -------------------------------------------
    async def _run(self, key: Key) -> None:
        assert self.api is not None
        namespace, name = key
        loop = asyncio.get_running_loop()
        self.passes += 1
        full = key in self._full
        self._full.discard(key)
        try:
            outcome: Outcome | None = await loop.run_in_executor(
                self.executor,
                functools.partial(
                    reconcile, self.api, namespace, name, full=full, images=self.options.images
                ),
            )
        except Exception as e:
            metrics.reconciled("AgentDeployment", ok=False)
            log.warning("reconcile of %s/%s failed: %s", namespace, name, e)
            raise
        metrics.reconciled("AgentDeployment", ok=True)
        if outcome is None:
            return
        if outcome.wrote:
            log.info(
                "reconciled %s/%s: applied=%s deleted=%s status=%s ready=%s reason=%s",
                namespace,
                name,
                outcome.applied,
                outcome.deleted,
                outcome.status_written,
                outcome.ready,
                outcome.reason,
            )
        if outcome.newly_stalled is not None:  # visible in `kubectl describe` and events
            reason, message = outcome.newly_stalled
            kopf.warn(kopf.Body(cast(kopf.RawBody, outcome.target)), reason=reason, message=message)
        if not outcome.ready and not outcome.stalled:
            self.coalescer.request_later(key, self.options.recheck_seconds)

    # -- kopf handlers --------------------------------------------------------------------
    async def startup(self, settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, self.options)
        o = self.options
        self.api = Api(load_client(pool_size=o.workers * 2))
        if not o.standalone:
            await asyncio.get_running_loop().run_in_executor(self.executor, self._ensure_peering)

    def _ensure_peering(self) -> None:
        """Create the peering object(s) kopf needs so replicas can see each other."""
        assert self.api is not None
        name = self.options.peering_name
        if self.options.all_namespaces:
            objs = [{"kind": "ClusterKopfPeering", "metadata": {"name": name}}]
        else:
            objs = [
                {"kind": "KopfPeering", "metadata": {"name": name, "namespace": ns}}
                for ns in self.options.namespaces
            ]
        for obj in objs:
            try:
                self.api.create({"apiVersion": "kopf.dev/v1", **obj})
            except ApiError as e:
                log.warning("cannot create peering object %s: %s", obj["metadata"], e)

    def stats(self) -> dict[str, Any]:
        """Counters for the liveness endpoint and the exit log line."""
        writes = dict(self.api.writes) if self.api else {}
        return {"reconcilePasses": self.passes, "writes": sum(writes.values()), "byKind": writes}

    async def probe(self, **_: Any) -> dict[str, Any]:
        return self.stats()

    async def cleanup(self, **_: Any) -> None:
        st = self.stats()
        log.info("stats: passes=%d writes=%d %s", st["reconcilePasses"], st["writes"], st["byKind"])
        self.coalescer.cancel_all()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def changed(self, namespace: str | None, name: str, **_: Any) -> None:
        assert namespace is not None
        self._full.add((namespace, name))
        try:
            await self.coalescer.request((namespace, name), force=True)
        except ApiError as e:
            raise kopf.TemporaryError(str(e), delay=5) from e

    async def resync(self, namespace: str | None, name: str, **_: Any) -> None:
        assert namespace is not None
        self._full.add((namespace, name))
        try:
            await self.coalescer.request((namespace, name))
        except Exception as e:  # the next tick retries
            log.warning("resync of %s/%s failed: %s", namespace, name, e)

    async def child_event(self, body: Any, namespace: str | None, **_: Any) -> None:
        owner = owner_of(body)
        if owner is None or namespace is None:
            return
        try:
            await self.coalescer.request((namespace, owner))
        except Exception as e:  # the timer retries
            log.warning("reconcile of %s/%s after a child event failed: %s", namespace, owner, e)

    def register(self, registry: kopf.OperatorRegistry) -> None:
        kopf.on.login(registry=registry)(kopf.login_via_client)
        kopf.on.startup(registry=registry)(self.startup)
        kopf.on.cleanup(registry=registry)(self.cleanup)
        kopf.on.probe(registry=registry, id="stats")(self.probe)
        agentcron.register(registry, lambda: self.api, self.executor)
        for reason in (kopf.on.resume, kopf.on.create, kopf.on.update):
            reason(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")(self.changed)
        kopf.timer(
            GROUP,
            VERSION,
            PLURAL,
            registry=registry,
            id="resync",
            interval=self.options.resync_seconds,
            initial_delay=self.options.resync_seconds,
        )(self.resync)
        for group, version, plural in WATCHED_CHILDREN:
            kopf.on.event(
                group,
                version,
                plural,
                registry=registry,
                id=f"child-{plural}",
                labels=MANAGED,
            )(self.child_event)
