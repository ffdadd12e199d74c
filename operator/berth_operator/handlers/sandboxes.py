"""The sandbox side of the operator: SandboxPool daemons, SandboxClaim binding, and the
Pod watch that feeds both (one cache, so a claim binds from memory)."""

from __future__ import annotations

from typing import Any, cast

import kopf

from berth_operator.handlers.options import Options
from berth_operator.handlers.sandboxclaim import ClaimBinder
from berth_operator.handlers.sandboxpool import PoolKeeper
from berth_operator.handlers.sandboxstate import SandboxState
from berth_operator.k8s.client import Api, load_client
from berth_operator.render.sandbox.names import FROM_POOL_LABEL

NO_DIFF_KINDS = frozenset({"Pod", "SandboxPool", "SandboxClaim"})


class LightDiffBase(kopf.DiffBaseStorage):
    """kopf deep-copies every event's body to detect changes, although only change
    handlers (on.create/update) use it. Pods, pools and claims have none (event handlers
    and daemons only), and Pod bodies are large: skip it for them. Other kinds keep the
    configured storage."""

    def __init__(self, inner: kopf.DiffBaseStorage) -> None:
        super().__init__()
        self.inner = inner

    def build(self, *, body: Any, extra_fields: Any = None) -> kopf.BodyEssence:
        if body.get("kind") in NO_DIFF_KINDS:
            return cast(kopf.BodyEssence, {})
        return self.inner.build(body=body, extra_fields=extra_fields)

    def fetch(self, *, body: Any) -> kopf.BodyEssence | None:
        if body.get("kind") in NO_DIFF_KINDS:
            return None
        return self.inner.fetch(body=body)

    def store(self, *, body: Any, patch: Any, essence: kopf.BodyEssence) -> None:
        if body.get("kind") not in NO_DIFF_KINDS:
            self.inner.store(body=body, patch=patch, essence=essence)


class Sandboxes:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.state = SandboxState(images=options.images)
        self.pools = PoolKeeper(self.state, options.resync_seconds)
        self.claims = ClaimBinder(self.state)

    async def startup(self, settings: kopf.OperatorSettings, **_: Any) -> None:
        self.state.api = Api(load_client(pool_size=64))
        # Runs after the AgentDeployment startup (registered first), which sets the storage.
        current = settings.persistence.diffbase_storage
        if not isinstance(current, LightDiffBase):
            settings.persistence.diffbase_storage = LightDiffBase(current)

    async def cleanup(self, **_: Any) -> None:
        self.state.executor.shutdown(wait=False, cancel_futures=True)
        self.state.fast.shutdown(wait=False, cancel_futures=True)

    async def pod_event(self, type: str | None, body: Any, **_: Any) -> None:
        pod = dict(body)
        pool, _claim = self.state.observe_pod(type or "ADDED", pod)
        if pool is not None:
            self.state.wake(pool)
        await self.state.notify(type or "ADDED", pod)

    async def probe(self, **_: Any) -> dict[str, Any]:
        return {"poolPasses": self.pools.passes, "claimsBound": self.claims.bound_total}

    def register(self, registry: kopf.OperatorRegistry) -> None:
        kopf.on.startup(registry=registry, id="sandbox-startup")(self.startup)
        kopf.on.cleanup(registry=registry, id="sandbox-cleanup")(self.cleanup)
        kopf.on.probe(registry=registry, id="sandboxes")(self.probe)
        kopf.on.event(
            "",
            "v1",
            "pods",
            registry=registry,
            id="sandbox-pods",
            labels={FROM_POOL_LABEL: kopf.PRESENT},
        )(self.pod_event)
        self.pools.register(registry)
        self.claims.register(registry)
