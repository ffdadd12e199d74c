"""kopf wiring of SandboxClaim: bind at once, keep the status, expire, clean up.

The fast path: the claim's watch event (``kopf.on.event``, so no finalizer and no kopf
bookkeeping writes delay it) binds right away from the in-memory Pod cache:

1. ``decide_binding`` picks a Ready warm Pod of the pool (current template first);
2. the adoption is one JSON merge patch carrying the Pod's resourceVersion: if another
   claim (in this process or in another operator replica) adopted it first, the API
   server answers 409 and the next candidate is tried. Two claims never share a Pod;
3. the Pod's token hash is the claim's ``spec.executorTokenSHA256`` (the runtime derives
   the token itself: no Secret); a claim without it (made by hand) gets a generated
   token in Secret ``<claim>-executor``, created in parallel with the adoption;
4. one status write: Ready/Bound with podName, podIP, launchType, boundAt.

When the pool's proxy rules name an ``oauthProvider`` and the claim names its thread and
its AgentDeployment, the deployment is checked first (a claim it cannot serve reports
Stalled/AgentAuthUnavailable and binds nothing), and after binding the Pod gets Secret
``<pod>-agent-auth`` (runtime URL, thread id, proxy token; mounted by the proxy only),
then an annotation naming it, so kubelet refreshes the volume at once.

Without a Ready warm Pod the claim starts a cold Pod (never beyond maxSize, counting
warm, claimed and cold Pods in flight) or reports Stalled/PoolExhausted and is retried
whenever a Pod of its pool changes. Deleting the claim deletes its Pod at once (the
owner reference would too, later). Expiry (shutdownTime, the pool's idleTimeout and
maxLifetime) deletes the Pod and marks the claim Expired; ttlSecondsAfterFinished then
deletes the claim.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from berth_operator.api import sandboxclaim as sc
from berth_operator.api.common import GROUP, VERSION
from berth_operator.api.sandboxpool import SandboxPoolSpec
from berth_operator.api.sandboxpool import parse_spec as parse_pool_spec
from berth_operator.handlers.sandboxpool import now_utc, pod_suffix, spec_problem
from berth_operator.handlers.sandboxstate import Key, SandboxState
from berth_operator.k8s import sandbox as k8s
from berth_operator.render.meta import Subject
from berth_operator.render.names import ChildNames
from berth_operator.render.sandbox import agent_auth
from berth_operator.render.sandbox.claim import (
    TOKEN_BYTES,
    BindDecision,
    adoption_patch,
    binding_of,
    claim_expiry,
    decide_binding,
    delete_after,
    fixed_expiry,
    generates_token,
    new_token,
    token_from_secret,
    token_secret,
    token_sha256,
)
from berth_operator.render.sandbox.names import (
    ACTIVITY_ANNOTATION,
    CLAIM_LABEL,
    FROM_POOL_LABEL,
    STATE_LABEL,
    STATE_WARM,
    TOKEN_HASH_ANNOTATION,
    PoolNames,
    token_secret_name,
)
from berth_operator.render.sandbox.pod import cold_pod, template_hash
from berth_operator.render.sandbox.pool import (
    format_time,
    is_pod_ready,
    parse_time,
    pick_warm_pod,
)
from berth_operator.render.sandbox.status import ClaimView, claim_status
from berth_operator.render.status import status_patch

log = logging.getLogger("berth.sandbox")

MAX_ADOPT_ATTEMPTS = 8
AGENT_AUTH_RETRY_SECONDS = 5.0
"""How soon a claim whose AgentDeployment cannot serve Agent Auth yet is checked again
(the operator does not watch AgentDeployments and their key Secrets for claims)."""


def _owned_by(pod: Mapping[str, Any], uid: str) -> bool:
    return any(o.get("uid") == uid for o in pod["metadata"].get("ownerReferences") or ())


class ClaimBinder:
    """Binding, status, expiry and cleanup of every SandboxClaim this process watches."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.claims: dict[Key, dict[str, Any]] = {}
        self.pods: dict[Key, dict[str, Any]] = {}
        """Claim -> the Pod this process bound it to (until the Pod watch shows it)."""
        self.unbound: dict[Key, str] = {}
        """Claim -> uid, for claims known to have no Pod yet (seen created by this process,
        or checked with a LIST after a restart)."""
        self.waiting: dict[Key, set[Key]] = {}
        """Pool -> claims waiting for it to exist or to have room."""
        self.timers: dict[Key, asyncio.TimerHandle] = {}
        self._running: set[Key] = set()
        self._again: set[Key] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.bound_total = 0
        self.seen_at: dict[Key, float] = {}
        """When the claim's ADDED event arrived (for the binding latency in the log)."""
        self.agent_auth_pods: set[Key] = set()
        """Pods whose Agent Auth Secret this process wrote (or saw announced on the Pod)."""
        state.listeners.append(self.pod_event)
        state.pool_listeners.append(self.pool_event)

    # -- events ---------------------------------------------------------------------------
    async def claim_event(
        self, type: str | None, body: Any, namespace: str | None, name: str, **_: Any
    ) -> None:
        if namespace is None:
            return
        key = (namespace, name)
        if type == "DELETED":
            await self._deleted(key, dict(body))
            return
        if type == "ADDED":
            self.seen_at[key] = time.time()
        raw = dict(body)
        old = self.claims.get(key)
        if old is None or old["metadata"].get("uid") != raw["metadata"].get("uid"):
            self.pods.pop(key, None)
            if type == "ADDED":  # created while we watch: no Pod can be bound to it yet
                self.unbound[key] = raw["metadata"]["uid"]
        elif _rv(raw) < _rv(old):
            return  # an older event than what we already hold (our own status write)
        self.claims[key] = raw
        await self.reconcile(key)

    async def pod_event(self, type: str, pod: dict[str, Any]) -> None:
        labels = pod["metadata"].get("labels") or {}
        claim = labels.get(CLAIM_LABEL)
        ns = pod["metadata"]["namespace"]
        if claim and (ns, claim) in self.claims:
            self.soon((ns, claim))
        pool = labels.get(FROM_POOL_LABEL)
        if pool:
            self.retry_waiting((ns, pool))

    async def pool_event(self, pool: Key) -> None:
        self.retry_waiting(pool)

    def retry_waiting(self, pool: Key) -> None:
        waiting = self.waiting.get(pool)
        if not waiting:
            return
        order = sorted(
            waiting,
            key=lambda k: self.claims.get(k, {}).get("metadata", {}).get("creationTimestamp", ""),
        )
        for key in order:
            self.soon(key)

    def soon(self, key: Key) -> None:
        """Reconcile ``key`` in a task of its own (from a callback or another object's event)."""
        task = asyncio.get_running_loop().create_task(self.reconcile(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deleted(self, key: Key, body: dict[str, Any]) -> None:
        uid = body["metadata"].get("uid")
        current = self.claims.get(key)
        if current is not None and current["metadata"].get("uid") != uid:
            return
        self.claims.pop(key, None)
        self.unbound.pop(key, None)
        self.seen_at.pop(key, None)
        for waiting in self.waiting.values():
            waiting.discard(key)
        if (timer := self.timers.pop(key, None)) is not None:
            timer.cancel()
        pod = self.pods.pop(key, None) or self.state.bound.get(key)
        if pod is not None:
            self.agent_auth_pods.discard((key[0], pod["metadata"]["name"]))
        if pod is not None and uid and _owned_by(pod, uid):
            api = self.state.api
            assert api is not None
            await self.state.run_fast(
                k8s.delete_pod, api, key[0], pod["metadata"]["name"], pod["metadata"]["uid"]
            )
            log.info("sandbox claim %s/%s deleted: Pod %s deleted", *key, pod["metadata"]["name"])

    # -- reconcile ------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> None:
        """One reconcile of a claim at a time; a request meanwhile runs once more after."""
        if key in self._running:
            self._again.add(key)
            return
        self._running.add(key)
        try:
            while True:
                self._again.discard(key)
                try:
                    await self._reconcile(key)
                except Exception as e:
                    log.warning("sandbox claim %s/%s: %s", *key, e)
                    self._schedule(key, 2.0)
                if key not in self._again:
                    break
        finally:
            self._running.discard(key)

    def _schedule(self, key: Key, delay: float) -> None:
        if (timer := self.timers.pop(key, None)) is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self.timers[key] = loop.call_later(max(0.0, delay), self._fire, key)

    def _fire(self, key: Key) -> None:
        self.timers.pop(key, None)
        if key in self.claims:
            self.soon(key)

    def _wait_for(self, pool: Key, key: Key) -> None:
        self.waiting.setdefault(pool, set()).add(key)

    def _bound_pod(self, key: Key, uid: str) -> dict[str, Any] | None:
        for pod in (self.state.bound.get(key), self.pods.get(key)):
            if pod is not None and _owned_by(pod, uid):
                return pod
        return None

    async def _reconcile(self, key: Key) -> None:
        state, api = self.state, self.state.api
        assert api is not None
        body = self.claims.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        claim = Subject.from_body(body)
        status = dict(body.get("status") or {})
        now = now_utc()
        try:
            spec = sc.parse_spec(body.get("spec"))
        except ValidationError as e:
            await self._write(key, claim, ClaimView(sc.REASON_INVALID_SPEC, spec_problem(e)))
            return
        pool_key = (key[0], spec.pool_ref.name)

        # Finished (Expired or SandboxLost): make sure the Pod is gone; TTL deletes the claim.
        finished = parse_time(status.get("finishedAt"))
        if finished is not None:
            await self._finished(key, claim, spec, status, finished, now)
            return

        pod = self._bound_pod(key, claim.uid)
        if pod is None and self.unbound.get(key) != claim.uid:
            found, _ = await state.run_fast(
                k8s.list_pods, api, key[0], f"{CLAIM_LABEL}={claim.name}"
            )
            mine = [p for p in found if _owned_by(p, claim.uid)]
            if mine:
                pod = mine[0]
                self.pods[key] = pod
            else:
                self.unbound[key] = claim.uid

        pool_body = state.pools.get(pool_key)
        pool_spec: SandboxPoolSpec | None = None
        if pool_body is not None:
            try:
                pool_spec = parse_pool_spec(pool_body.get("spec"))
            except ValidationError:
                pool_spec = None
        lifecycle = pool_spec.lifecycle if pool_spec is not None else None

        if pod is not None:
            await self._bound(key, claim, spec, status, pod, lifecycle, now)
            return
        if status.get("podName"):  # was bound, its Pod is gone
            await self._finish(
                key,
                claim,
                spec,
                status,
                sc.REASON_SANDBOX_LOST,
                f"the sandbox Pod {status['podName']} is gone",
                now,
            )
            return
        expiry = claim_expiry(spec, None, None, None, now)
        if expiry.expired:
            await self._finish(key, claim, spec, status, expiry.reason, expiry.message, now)
            return
        if expiry.at is not None:
            self._schedule(key, (expiry.at - now).total_seconds())

        if pool_body is None:
            pool_body = await state.run_fast(
                k8s.get, api, "berth.dev/v1alpha1", "SandboxPool", *pool_key
            )
            if pool_body is not None:
                state.pools.setdefault(pool_key, pool_body)
        if pool_body is None or pool_body["metadata"].get("deletionTimestamp"):
            self._wait_for(pool_key, key)
            await self._write(
                key,
                claim,
                ClaimView(sc.REASON_POOL_NOT_FOUND, f"SandboxPool {spec.pool_ref.name} not found"),
            )
            return
        try:
            pool_spec = parse_pool_spec(pool_body.get("spec"))
        except ValidationError as e:
            self._wait_for(pool_key, key)
            await self._write(
                key,
                claim,
                ClaimView(
                    sc.REASON_POOL_INVALID, f"SandboxPool {spec.pool_ref.name}: {spec_problem(e)}"
                ),
            )
            return
        files: agent_auth.Files | None = None
        if agent_auth.wanted(spec, pool_spec):
            resolution = await self._resolve_agent_auth(key[0], spec, pool_key[1], pool_spec)
            if resolution.files is None:
                self._schedule(key, AGENT_AUTH_RETRY_SECONDS)
                await self._write(
                    key, claim, ClaimView(sc.REASON_AGENT_AUTH_UNAVAILABLE, resolution.problem)
                )
                return
            files = resolution.files
        await self._bind(key, claim, spec, Subject.from_body(pool_body), pool_spec, now, files)

    # -- binding --------------------------------------------------------------------------
    async def _bind(
        self,
        key: Key,
        claim: Subject,
        spec: sc.SandboxClaimSpec,
        pool: Subject,
        pool_spec: SandboxPoolSpec,
        now: dt.datetime,
        files: agent_auth.Files | None = None,
    ) -> None:
        state, api = self.state, self.state.api
        assert api is not None
        pool_key = (pool.namespace, pool.name)
        thash = template_hash(pool_spec, self.state.images)
        stamp = format_time(now)
        token = new_token(os.urandom(TOKEN_BYTES)) if generates_token(spec) else None
        binding = binding_of(claim, spec, token, stamp)
        exclude: set[str] = set()
        for _ in range(MAX_ADOPT_ATTEMPTS):
            reserved = {n for ns, n in state.reserved if ns == pool.namespace}
            members = state.pods.get(pool_key, {})
            # Warm Pods first (the common case, without scanning the claimed ones).
            warm = [
                p
                for p in members.values()
                if (p["metadata"].get("labels") or {}).get(STATE_LABEL) == STATE_WARM
            ]
            pick = pick_warm_pod(warm, thash, key=claim.name, exclude=exclude | reserved)
            decision = (
                BindDecision("warm", pod=pick)
                if pick is not None
                else decide_binding(
                    pool_spec,
                    members.values(),
                    thash,
                    key=claim.name,
                    exclude=exclude | reserved,
                    pending_cold=state.cold_pending.get(pool_key, 0),
                )
            )
            if decision.kind == "exhausted":
                self._wait_for(pool_key, key)
                state.wake(pool_key)
                await self._write(key, claim, ClaimView(decision.reason, decision.message))
                return
            if decision.kind == "cold":
                await self._bind_cold(key, claim, pool, pool_spec, binding, token, thash, files)
                return
            assert decision.pod is not None
            pod = decision.pod
            name = pod["metadata"]["name"]
            rkey = (pool.namespace, name)
            state.reserved.add(rkey)
            try:
                adopted, secret = await asyncio.gather(
                    state.run_fast(
                        k8s.patch_pod,
                        api,
                        pool.namespace,
                        name,
                        adoption_patch(binding),
                        pod["metadata"]["resourceVersion"],
                    ),
                    self._token_secret(claim, token),
                )
            finally:
                state.reserved.discard(rkey)
            if adopted is None:  # someone else got it first, or it is gone
                exclude.add(name)
                state.pods.get(pool_key, {}).pop(name, None)
                continue
            state.observe_pod("MODIFIED", adopted)
            self.pods[key] = adopted
            self.unbound.pop(key, None)
            for waiting in self.waiting.values():
                waiting.discard(key)
            state.adopted_at[pool_key] = time.monotonic()
            state.wake(pool_key)  # replenish (after REPLENISH_DELAY)
            await self._fix_token(pool.namespace, adopted, token, secret)
            if files is not None:
                adopted = await self._write_agent_auth(key, claim.name, pool.name, adopted, files)
            self.bound_total += 1
            event_at = self.seen_at.pop(key, None)
            if event_at is not None:
                log.info(
                    "sandbox claim %s/%s: adopted warm Pod %s (%.0f ms after its event)",
                    *key,
                    name,
                    (time.time() - event_at) * 1000,
                )
            view = self._view(
                sc.REASON_BOUND,
                f"bound to warm Pod {name}",
                adopted,
                "warm",
                stamp,
                spec,
                pool_spec,
                _secret_name(claim, spec),
            )
            await self._write(key, claim, view)
            self._schedule_expiry(key, spec, pool_spec, stamp, claim)
            return
        self._schedule(key, 0.2)  # unlucky: every candidate was taken meanwhile

    async def _bind_cold(
        self,
        key: Key,
        claim: Subject,
        pool: Subject,
        pool_spec: SandboxPoolSpec,
        binding: Any,
        token: str | None,
        thash: str,
        files: agent_auth.Files | None = None,
    ) -> None:
        state, api = self.state, self.state.api
        assert api is not None
        pool_key = (pool.namespace, pool.name)
        name = PoolNames(pool.name).pod(pod_suffix())
        state.cold_pending[pool_key] = state.cold_pending.get(pool_key, 0) + 1
        try:
            created, secret = await asyncio.gather(
                state.run_fast(
                    k8s.create_pod,
                    api,
                    cold_pod(pool, pool_spec, name, binding, thash, images=self.state.images),
                ),
                self._token_secret(claim, token),
            )
            state.observe_pod("ADDED", created)
        finally:
            state.cold_pending[pool_key] -= 1
        self.pods[key] = created
        self.unbound.pop(key, None)
        for waiting in self.waiting.values():
            waiting.discard(key)
        await self._fix_token(pool.namespace, created, token, secret)
        if files is not None:
            created = await self._write_agent_auth(key, claim.name, pool.name, created, files)
        log.info("sandbox claim %s/%s: cold Pod %s", *key, name)
        spec = sc.parse_spec(self.claims[key].get("spec"))
        view = self._view(
            sc.REASON_PENDING,
            f"cold Pod {name} starting",
            created,
            "cold",
            binding.claimed_at,
            spec,
            pool_spec,
            _secret_name(claim, spec),
        )
        await self._write(key, claim, view)

    async def _token_secret(self, claim: Subject, token: str | None) -> dict[str, Any] | None:
        """Create Secret ``<claim>-executor`` (None: the claim named its own token hash)."""
        if token is None:
            return None
        api = self.state.api
        assert api is not None
        return await self.state.run_fast(k8s.create_secret, api, token_secret(claim, token))

    async def _resolve_agent_auth(
        self, namespace: str, spec: sc.SandboxClaimSpec, pool: str, pool_spec: SandboxPoolSpec
    ) -> agent_auth.Resolution:
        """Read the claim's AgentDeployment and its sandbox key Secret; derive the files."""
        api = self.state.api
        assert api is not None and spec.deployment_ref is not None
        name = spec.deployment_ref.name
        deployment, key_secret = await asyncio.gather(
            self.state.run_fast(
                k8s.get, api, f"{GROUP}/{VERSION}", "AgentDeployment", namespace, name
            ),
            self.state.run_fast(
                k8s.get, api, "v1", "Secret", namespace, ChildNames(name).sandbox_key
            ),
        )
        return agent_auth.resolve(spec, namespace, pool, pool_spec, deployment, key_secret)

    async def _write_agent_auth(
        self,
        key: Key,
        claim: str,
        pool: str,
        pod: dict[str, Any],
        files: agent_auth.Files,
    ) -> dict[str, Any]:
        """Secret ``<pod>-agent-auth`` (owned by the Pod), then the Pod annotation naming it:
        that Pod update makes kubelet refresh the proxy's volume now, not at its next sync."""
        api = self.state.api
        assert api is not None
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        await self.state.run_fast(
            k8s.apply_secret, api, agent_auth.files_secret(pod, claim, pool, files)
        )
        self.agent_auth_pods.add((namespace, name))
        updated = await self.state.run_fast(
            k8s.annotate_pod, api, namespace, name, agent_auth.touch_patch(name)
        )
        if updated is None:
            return pod
        self.state.observe_pod("MODIFIED", updated)
        if key in self.pods:
            self.pods[key] = updated
        log.info("sandbox claim %s/%s: Agent Auth files for Pod %s", *key, name)
        return updated

    async def _ensure_agent_auth(
        self,
        key: Key,
        claim: Subject,
        spec: sc.SandboxClaimSpec,
        pool_spec: SandboxPoolSpec | None,
        pod: dict[str, Any],
    ) -> str | None:
        """For a claim found bound (e.g. after an operator restart between adoption and the
        Secret): write the Agent Auth Secret if the Pod does not announce it yet. Returns a
        problem that keeps it from being written, else None."""
        if pool_spec is None or not agent_auth.wanted(spec, pool_spec):
            return None
        name = pod["metadata"]["name"]
        if (key[0], name) in self.agent_auth_pods:
            return None
        if (pod["metadata"].get("annotations") or {}).get(agent_auth.SECRET_ANNOTATION):
            self.agent_auth_pods.add((key[0], name))
            return None
        resolution = await self._resolve_agent_auth(key[0], spec, spec.pool_ref.name, pool_spec)
        if resolution.files is None:
            self._schedule(key, AGENT_AUTH_RETRY_SECONDS)
            return resolution.problem
        await self._write_agent_auth(key, claim.name, spec.pool_ref.name, pod, resolution.files)
        return None

    async def _fix_token(
        self,
        namespace: str,
        pod: dict[str, Any],
        token: str | None,
        secret: dict[str, Any] | None,
    ) -> None:
        """A Secret left by an earlier, interrupted binding wins: point the Pod at its token."""
        if token is None or secret is None:
            return
        existing = token_from_secret(secret)
        if existing is None or existing == token:
            return
        api = self.state.api
        assert api is not None
        patch = {"metadata": {"annotations": {TOKEN_HASH_ANNOTATION: token_sha256(existing)}}}
        updated = await self.state.run_fast(
            k8s.patch_pod,
            api,
            namespace,
            pod["metadata"]["name"],
            patch,
            pod["metadata"]["resourceVersion"],
        )
        if updated is not None:
            self.state.observe_pod("MODIFIED", updated)

    # -- bound claims ----------------------------------------------------------------------
    def _view(
        self,
        reason: str,
        message: str,
        pod: Mapping[str, Any],
        launch: str,
        bound_at: str,
        spec: sc.SandboxClaimSpec,
        pool_spec: SandboxPoolSpec | None,
        token_secret: str | None = None,
    ) -> ClaimView:
        expires = fixed_expiry(
            spec, pool_spec.lifecycle if pool_spec else None, parse_time(bound_at)
        )
        return ClaimView(
            reason,
            message,
            pod_name=pod["metadata"]["name"],
            pod_ip=(pod.get("status") or {}).get("podIP") or None,
            launch_type=launch,
            bound_at=bound_at,
            expires_at=format_time(expires) if expires else None,
            token_secret_name=token_secret,
        )

    def _schedule_expiry(
        self,
        key: Key,
        spec: sc.SandboxClaimSpec,
        pool_spec: SandboxPoolSpec | None,
        bound_at: str,
        claim: Subject,
    ) -> None:
        last = parse_time(claim.annotations.get(ACTIVITY_ANNOTATION))
        now = now_utc()
        expiry = claim_expiry(
            spec, pool_spec.lifecycle if pool_spec else None, parse_time(bound_at), last, now
        )
        if expiry.at is not None:
            self._schedule(key, (expiry.at - now).total_seconds() + 0.05)

    async def _bound(
        self,
        key: Key,
        claim: Subject,
        spec: sc.SandboxClaimSpec,
        status: dict[str, Any],
        pod: dict[str, Any],
        lifecycle: Any,
        now: dt.datetime,
    ) -> None:
        labels = pod["metadata"].get("labels") or {}
        launch = labels.get("berth.dev/launch") or status.get("launchType") or "warm"
        bound_at = (
            status.get("boundAt")
            or (pod["metadata"].get("annotations") or {}).get("berth.dev/claimed-at")
            or format_time(now)
        )
        last = parse_time(claim.annotations.get(ACTIVITY_ANNOTATION))
        expiry = claim_expiry(spec, lifecycle, parse_time(bound_at), last, now)
        if expiry.expired:
            await self._finish(key, claim, spec, status, expiry.reason, expiry.message, now)
            return
        if expiry.at is not None:
            self._schedule(key, (expiry.at - now).total_seconds() + 0.05)
        phase = (pod.get("status") or {}).get("phase")
        if phase in {"Failed", "Succeeded"}:
            await self._finish(
                key,
                claim,
                spec,
                status,
                sc.REASON_SANDBOX_LOST,
                f"the sandbox Pod {pod['metadata']['name']} ended ({phase})",
                now,
            )
            return
        ready = is_pod_ready(pod)
        name = pod["metadata"]["name"]
        reason = sc.REASON_BOUND if ready else sc.REASON_PENDING
        message = f"bound to {launch} Pod {name}" if ready else f"{launch} Pod {name} starting"
        pool_body = self.state.pools.get((key[0], spec.pool_ref.name))
        pool_spec = None
        if pool_body is not None:
            try:
                pool_spec = parse_pool_spec(pool_body.get("spec"))
            except ValidationError:
                pool_spec = None
        problem = await self._ensure_agent_auth(key, claim, spec, pool_spec, pod)
        if problem is not None:
            reason, message = sc.REASON_AGENT_AUTH_UNAVAILABLE, f"Pod {name}: {problem}"
        view = self._view(
            reason, message, pod, launch, bound_at, spec, pool_spec, _secret_name(claim, spec)
        )
        await self._write(key, claim, view)

    async def _finish(
        self,
        key: Key,
        claim: Subject,
        spec: sc.SandboxClaimSpec,
        status: dict[str, Any],
        reason: str,
        message: str,
        now: dt.datetime,
    ) -> None:
        """Expired or SandboxLost: delete the Pod, record finishedAt, schedule the TTL."""
        stamp = format_time(now)
        await self._delete_pod(key, claim)
        view = ClaimView(
            reason,
            message,
            pod_name=status.get("podName"),
            launch_type=status.get("launchType"),
            bound_at=status.get("boundAt"),
            expires_at=status.get("expiresAt"),
            finished_at=stamp,
        )
        log.info("sandbox claim %s/%s: %s: %s", *key, reason, message)
        await self._write(key, claim, view)
        self._schedule_ttl(key, spec, now, now)

    async def _finished(
        self,
        key: Key,
        claim: Subject,
        spec: sc.SandboxClaimSpec,
        status: dict[str, Any],
        finished: dt.datetime,
        now: dt.datetime,
    ) -> None:
        await self._delete_pod(key, claim)
        self._schedule_ttl(key, spec, finished, now)

    def _schedule_ttl(
        self, key: Key, spec: sc.SandboxClaimSpec, finished: dt.datetime, now: dt.datetime
    ) -> None:
        at = delete_after(spec, finished)
        if at is None:
            return
        if at <= now:
            body = self.claims.get(key)
            uid = body["metadata"].get("uid") if body else None
            api = self.state.api
            assert api is not None
            task = asyncio.get_running_loop().create_task(
                self.state.run_fast(k8s.delete_object, api, sc.KIND, key[0], key[1], uid)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._schedule(key, (at - now).total_seconds() + 0.05)

    async def _delete_pod(self, key: Key, claim: Subject) -> None:
        pod = self._bound_pod(key, claim.uid)
        if pod is None:
            return
        api = self.state.api
        assert api is not None
        await self.state.run_fast(
            k8s.delete_pod, api, key[0], pod["metadata"]["name"], pod["metadata"]["uid"]
        )
        self.pods.pop(key, None)
        self.agent_auth_pods.discard((key[0], pod["metadata"]["name"]))

    async def _write(self, key: Key, claim: Subject, view: ClaimView) -> None:
        api = self.state.api
        assert api is not None
        body = self.claims.get(key)
        if body is None:
            return
        live = dict(body.get("status") or {})
        new = claim_status(claim, view, live, format_time(now_utc()))
        patch = status_patch(new, live)
        if patch is None:
            return
        updated = await self.state.run_fast(k8s.patch_status, api, sc.KIND, key[0], key[1], patch)
        if updated is not None:
            cur = self.claims.get(key)
            if cur is not None and cur["metadata"].get("uid") == updated["metadata"].get("uid"):
                self.claims[key] = updated

    def register(self, registry: kopf.OperatorRegistry) -> None:
        kopf.on.event(GROUP, VERSION, sc.PLURAL, registry=registry, id="sandboxclaim")(
            self.claim_event
        )


def _secret_name(claim: Subject, spec: sc.SandboxClaimSpec) -> str | None:
    """``status.tokenSecretName``: only claims whose token the operator generated have one."""
    return token_secret_name(claim.name) if generates_token(spec) else None


def _rv(body: Mapping[str, Any]) -> int:
    try:
        return int(body["metadata"]["resourceVersion"])
    except (KeyError, ValueError):
        return 0
