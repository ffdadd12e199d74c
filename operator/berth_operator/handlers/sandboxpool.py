"""kopf wiring of SandboxPool: one daemon per pool keeps its warm Pods (poolboy style).

Each pass of a pool's daemon:

1. (when the spec changed, or every ``CHILD_CHECK_SECONDS``) ensures the pool's CA
   Secret (generated once, never overwritten), the CA bundle and proxy ConfigMaps and
   the managed NetworkPolicy, and checks that the rule Secrets exist;
2. reads every Pod of the pool (``berth.dev/from-pool``) from the shared cache that the
   Pod watch feeds (and the claim binder reads); every ``LIST_SECONDS`` (and on the
   first pass) a real LIST from the API server is merged in, repairing missed events;
3. asks ``render.sandbox.pool.plan_pool`` what to do, with the daemon's expectations
   (Pods it created or deleted that the list does not reflect yet), so a lagging view
   never creates twice;
4. deletes (each with the Pod's resourceVersion as a precondition, so a Pod a claim
   adopted meanwhile survives), creates the shortfall in slow-start batches (1, 2, 4..)
   in parallel, and patches the status only when it changed.

A pass runs when a Pod of the pool changes (the Pod watch sets the pool's event), when
the pool changes, after a claim adopts one of its Pods, and at least every
``resync`` seconds. Update strategies are decided in plan_pool: ``Recreate`` deletes
stale warm Pods at once; ``OnReplenish`` keeps them (claims prefer current ones) and
they go as they are claimed, or when the pool scales down (stale go before current).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any, cast

import kopf
from pydantic import ValidationError

from berth_operator import metrics
from berth_operator.api.common import GROUP, VERSION
from berth_operator.api.sandboxpool import KIND, PLURAL, SandboxPoolSpec, parse_spec
from berth_operator.handlers.sandboxstate import Key, SandboxState
from berth_operator.k8s import sandbox as k8s
from berth_operator.k8s.client import ApiError
from berth_operator.render.meta import Subject
from berth_operator.render.pod_health import same_stall
from berth_operator.render.sandbox import ca as ca
from berth_operator.render.sandbox.names import PoolNames
from berth_operator.render.sandbox.netpol import (
    ServiceBackends,
    network_policy,
    service_backends,
)
from berth_operator.render.sandbox.pod import template_hash, warm_pod
from berth_operator.render.sandbox.pool import Expectations, PoolPlan, format_time, plan_pool
from berth_operator.render.sandbox.proxy import proxy_config_map
from berth_operator.render.sandbox.status import pool_status, stuck_warm_pods
from berth_operator.render.status import status_patch

log = logging.getLogger("berth.sandbox")

CHILD_CHECK_SECONDS = 30.0
LIST_SECONDS = 30.0
REPLENISH_DELAY = 0.3
REPLENISH_MAX_HOLD = 3.0
MAX_BATCH = 64
DEBOUNCE_SECONDS = 0.05
_SUFFIX = string.ascii_lowercase + string.digits


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pod_suffix() -> str:
    return "".join(secrets.choice(_SUFFIX) for _ in range(6))


def spec_problem(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in e.errors()
    )


@dataclass
class PoolMemory:
    """What one pool's daemon remembers between passes."""

    expectations: Expectations
    children_for: tuple[str, int] | None = None
    """(uid, generation) whose children were last ensured."""
    children_at: float = 0.0
    listed_at: float = -1e9
    held_since: float | None = None
    """When creates were first held back for the current burst of claims."""
    """When the Pods were last LISTed (between LISTs the watch-fed cache is used)."""
    problem: tuple[str, str] | None = None
    """A Stalled reason found while ensuring children (a missing Secret, a refused write)."""


class PoolKeeper:
    """The per-pool daemons and the SandboxPool watch."""

    def __init__(self, state: SandboxState, resync_seconds: float) -> None:
        self.state = state
        self.resync = resync_seconds
        self.memory: dict[Key, PoolMemory] = {}
        self.passes = 0

    # -- kopf handlers --------------------------------------------------------------------
    async def pool_event(
        self, type: str | None, body: Any, namespace: str | None, name: str, **_: Any
    ) -> None:
        """Keep the latest body of every pool, and wake its daemon when it changed."""
        if namespace is None:
            return
        key = (namespace, name)
        before = self.state.pools.get(key)
        if type == "DELETED":
            self.state.pools.pop(key, None)
            self.memory.pop(key, None)
            metrics.pool_gone(namespace, name)
        else:
            self.state.pools[key] = dict(body)
        meta = body.get("metadata") or {}
        if (
            before is None
            or type == "DELETED"
            or meta.get("deletionTimestamp")
            or before["metadata"].get("generation") != meta.get("generation")
            or before["metadata"].get("uid") != meta.get("uid")
        ):  # not for our own status writes
            self.state.wake(key)
        for listener in self.state.pool_listeners:
            with contextlib.suppress(Exception):
                await listener(key)

    async def daemon(
        self, namespace: str | None, name: str | None, stopped: Any, body: Any, **_: Any
    ) -> None:
        assert namespace is not None and name is not None
        key = (namespace, name)
        self.state.pools.setdefault(key, dict(body))
        waker = self.state.waker(key)
        while not stopped:
            waker.clear()
            delay = self.resync
            try:
                requeue = await self.run_pass(key)
                if requeue is not None:
                    delay = min(delay, requeue)
            except Exception as e:
                metrics.reconciled("SandboxPool", ok=False)
                log.warning("sandbox pool %s/%s: pass failed: %s", namespace, name, e)
                delay = 2.0
            else:
                metrics.reconciled("SandboxPool", ok=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waker.wait(), timeout=delay)
            await asyncio.sleep(DEBOUNCE_SECONDS)  # let a burst of Pod events land first

    # -- one pass --------------------------------------------------------------------------
    async def run_pass(self, key: Key) -> float | None:
        """One pass; returns seconds until the next pass is needed (None: on events only)."""
        state, api = self.state, self.state.api
        assert api is not None
        body = state.pools.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        self.passes += 1
        namespace, name = key
        subject = Subject.from_body(body)
        mem = self.memory.setdefault(key, PoolMemory(Expectations()))
        now = now_utc()
        try:
            spec = parse_spec(body.get("spec"))
        except ValidationError as e:
            detail = spec_problem(e)
            await self._write_status(key, body, subject, None, None, None, now, invalid=detail)
            return None
        thash = template_hash(spec, state.images)

        generation = (subject.uid, subject.generation)
        if (
            mem.children_for != generation
            or mem.problem is not None
            or time.monotonic() - mem.children_at > CHILD_CHECK_SECONDS
        ):
            mem.problem = await state.run(self._ensure_children, subject, spec)
            mem.children_for, mem.children_at = generation, time.monotonic()

        if time.monotonic() - mem.listed_at > LIST_SECONDS:
            listed, list_rv = await state.run(
                k8s.list_pods, api, namespace, PoolNames(name).all_pods_selector()
            )
            state.refresh_pool(key, listed, list_rv)
            mem.listed_at = time.monotonic()
        pods = list(state.pods.get(key, {}).values())
        # Pods a claim of this process is adopting right now count as claimed already.
        view = [
            self._as_claimed(p) if (namespace, p["metadata"]["name"]) in state.reserved else p
            for p in pods
        ]
        mem.expectations = mem.expectations.settle(view, now)
        plan = plan_pool(spec, view, thash, now, mem.expectations, batch_size=MAX_BATCH)
        requeue = plan.requeue_after
        hold = self._replenish_hold(key, mem, plan)
        if hold:
            plan = dataclasses.replace(plan, create=0)
            requeue = hold if requeue is None else min(requeue, hold)
        if mem.problem is None:
            await self._execute(key, subject, spec, thash, plan, pods, mem)
        # Stuck Pods still go through the plan (replaced after the grace period), so a
        # registry that comes back heals the pool; the status says what blocks it now.
        problem = mem.problem or stuck_warm_pods(view, thash)
        await self._write_status(key, body, subject, spec, plan, thash, now, problem=problem)
        return requeue

    def _replenish_hold(self, key: Key, mem: PoolMemory, plan: PoolPlan) -> float:
        """Seconds to hold back creates while claims are draining the pool.

        Replacement Pods compete with the claims' own writes at the API server; a burst
        binds faster when the refill starts ``REPLENISH_DELAY`` after its last adoption
        (as agent-sandbox's replenish delay). Never held longer than ``REPLENISH_MAX_HOLD``.
        """
        now = time.monotonic()
        last = self.state.adopted_at.get(key)
        if not plan.create or last is None or now - last >= REPLENISH_DELAY:
            mem.held_since = None
            return 0.0
        if mem.held_since is None:
            mem.held_since = now
        if now - mem.held_since >= REPLENISH_MAX_HOLD:
            return 0.0
        return REPLENISH_DELAY - (now - last)

    @staticmethod
    def _as_claimed(pod: dict[str, Any]) -> dict[str, Any]:
        meta = pod["metadata"]
        labels = {**(meta.get("labels") or {}), "berth.dev/sandbox-state": "claimed"}
        return {**pod, "metadata": {**meta, "labels": labels}}

    def _ensure_children(self, pool: Subject, spec: SandboxPoolSpec) -> tuple[str, str] | None:
        """CA Secret (created once), CA bundle, proxy config, NetworkPolicy; rule Secrets."""
        api = self.state.api
        assert api is not None
        names = PoolNames(pool.name)
        try:
            live_ca = k8s.get(api, "v1", "Secret", pool.namespace, names.ca_secret)
            if live_ca is None:
                material = ca.generate_ca(
                    f"berth-sandbox {pool.namespace}/{pool.name}",
                    os.urandom(ca.SEED_BYTES),
                    now_utc(),
                )
                live_ca = k8s.create_secret(api, ca.ca_secret(pool, material, ca.mozilla_bundle()))
            material_or_none = ca.material_from_secret(live_ca)
            if material_or_none is None:
                return (
                    "CAInvalid",
                    f"Secret {names.ca_secret} has no usable tls.crt/tls.key; delete it and the "
                    "operator generates a new CA",
                )
            bundle = ca.ca_bundle_config_map(pool, material_or_none, ca.mozilla_bundle())
            for obj in (bundle, proxy_config_map(pool, spec)):
                live = k8s.get(api, "v1", "ConfigMap", pool.namespace, obj["metadata"]["name"])
                k8s.apply_if_changed(api, obj, live)
            backends: list[ServiceBackends] = []
            for ref in spec.auth_proxy.egress.allow_services or ():
                ns = ref.namespace or pool.namespace
                svc = k8s.get(api, "v1", "Service", ns, ref.name)
                if svc is None:
                    return (
                        "ServiceNotFound",
                        f"egress.allowServices names Service {ns}/{ref.name}, which does not exist",
                    )
                found = service_backends(svc)
                if isinstance(found, str):
                    return ("ServiceWithoutSelector", found)
                backends.append(found)
            policy = network_policy(pool, spec, backends)
            if policy is None:
                k8s.delete_owned(
                    api,
                    "NetworkPolicy",
                    "networking.k8s.io/v1",
                    pool.namespace,
                    names.network_policy,
                    pool.uid,
                )
            else:
                live = k8s.get(
                    api,
                    "networking.k8s.io/v1",
                    "NetworkPolicy",
                    pool.namespace,
                    names.network_policy,
                )
                k8s.apply_if_changed(api, policy, live)
        except ApiError as e:
            if not e.rejected:
                raise
            return ("Forbidden" if e.status == 403 else "ApplyRejected", e.message)
        missing = [
            s
            for s in spec.auth_proxy.secret_names()
            if k8s.get(api, "v1", "Secret", pool.namespace, s) is None
        ]
        if missing:
            return (
                "SecretNotFound",
                f"authProxy rules read Secret(s) {', '.join(missing)}, not found in namespace "
                f"{pool.namespace}",
            )
        return None

    async def _execute(
        self,
        key: Key,
        pool: Subject,
        spec: SandboxPoolSpec,
        thash: str,
        plan: PoolPlan,
        pods: list[dict[str, Any]],
        mem: PoolMemory,
    ) -> None:
        state, api = self.state, self.state.api
        assert api is not None
        namespace = key[0]
        by_name = {p["metadata"]["name"]: p for p in pods}
        doomed = [
            by_name[n] for n in plan.delete if n in by_name and (namespace, n) not in state.reserved
        ]
        if doomed:
            log.info(
                "sandbox pool %s/%s: deleting %s",
                *key,
                ", ".join(
                    f"{p['metadata']['name']} ({plan.reasons[p['metadata']['name']]})"
                    for p in doomed
                ),
            )
            mem.expectations = mem.expectations.deleted(
                [p["metadata"]["name"] for p in doomed], now_utc()
            )
            await asyncio.gather(
                *(
                    state.run(
                        k8s.delete_pod,
                        api,
                        namespace,
                        p["metadata"]["name"],
                        p["metadata"].get("uid"),
                        p["metadata"].get("resourceVersion"),
                    )
                    for p in doomed
                )
            )
        left, batch = plan.create, 1
        while left > 0:
            n = min(left, batch)
            names = [PoolNames(pool.name).pod(pod_suffix()) for _ in range(n)]
            mem.expectations = mem.expectations.created(names, now_utc())
            results = await asyncio.gather(
                *(
                    state.run(
                        k8s.create_pod, api, warm_pod(pool, spec, nm, thash, images=state.images)
                    )
                    for nm in names
                ),
                return_exceptions=True,
            )
            made = {r["metadata"]["name"] for r in results if isinstance(r, dict)}
            for r in results:
                if isinstance(r, dict):
                    state.observe_pod("ADDED", r)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:  # a failed create will never be observed: forget it
                mem.expectations = Expectations(
                    creating={
                        k: v
                        for k, v in mem.expectations.creating.items()
                        if k not in names or k in made
                    },
                    deleting=mem.expectations.deleting,
                )
                err = failed[0]
                if isinstance(err, ApiError) and err.rejected:
                    mem.problem = (
                        "Forbidden" if err.status == 403 else "PodRejected",
                        f"creating a sandbox Pod failed: {err.message}",
                    )
                    return
                if isinstance(err, ApiError) and err.status == 409:
                    continue  # a name collision: the next round picks new names
                raise err
            left -= n
            batch = min(batch * 2, MAX_BATCH)
        if plan.create:
            log.info("sandbox pool %s/%s: created %d warm Pod(s)", *key, plan.create)

    async def _write_status(
        self,
        key: Key,
        body: dict[str, Any],
        subject: Subject,
        spec: SandboxPoolSpec | None,
        plan: PoolPlan | None,
        thash: str | None,
        now: dt.datetime,
        *,
        problem: tuple[str, str] | None = None,
        invalid: str | None = None,
    ) -> None:
        api = self.state.api
        assert api is not None
        live = dict(body.get("status") or {})
        new = pool_status(
            subject, spec, plan, thash, live, format_time(now), problem=problem, invalid=invalid
        )
        if spec is not None:
            metrics.pool_observed(
                key[0],
                key[1],
                warm=int(new.get("readyReplicas") or 0),
                claimed=int(new.get("claimed") or 0),
                max_size=spec.max_size,
            )
        patch = status_patch(new, live)
        if patch is None:
            return
        updated = await self.state.run(k8s.patch_status, api, KIND, key[0], key[1], patch)
        if updated is not None:  # keep our own write visible to the next pass
            cur = self.state.pools.get(key)
            if cur is not None and cur["metadata"].get("uid") == updated["metadata"].get("uid"):
                self.state.pools[key] = {**cur, "status": updated.get("status") or {}}
        stalled = next(
            (c for c in new["conditions"] if c["type"] == "Stalled" and c["status"] == "True"), None
        )
        was: dict[str, Any] = next(
            (c for c in live.get("conditions") or () if c.get("type") == "Stalled"), {}
        )
        if stalled is not None and (
            was.get("status") != "True" or not same_stall(was.get("reason"), stalled["reason"])
        ):
            kopf.warn(
                kopf.Body(cast(kopf.RawBody, body)),
                reason=stalled["reason"],
                message=stalled["message"],
            )

    def register(self, registry: kopf.OperatorRegistry) -> None:
        kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="sandboxpool-cache")(
            self.pool_event
        )
        kopf.daemon(
            GROUP,
            VERSION,
            PLURAL,
            registry=registry,
            id="sandboxpool",
            cancellation_backoff=1.0,
        )(self.daemon)
