"""Decisions of the pool daemon: which warm Pods to create and delete, which to hand out.

Pure functions over the Pods of one pool (every Pod labelled ``berth.dev/from-pool``)
and the daemon's own expectations (writes it made that a cache or a list may not show
yet), so that a stale view never makes it create twice or delete twice.

Rules, in order:

1. a warm Pod that failed, or is not Ready after ``readinessGracePeriodSeconds``, is
   deleted (and thereby replaced);
2. ``Recreate``: warm Pods of an older template are deleted at once; ``OnReplenish``:
   they stay usable and go as they are claimed (``pick_warm_pod`` prefers current ones);
3. more warm Pods than ``replicas``: delete the not-Ready first, then stale, then newest;
4. more Pods than ``maxSize`` (warm plus claimed, e.g. after lowering it): delete warm
   Pods in the same order; claimed Pods are never touched here;
5. fewer warm Pods than ``replicas``: create the shortfall, at most ``batch_size`` per
   pass and never beyond ``maxSize``; Pods created but not yet seen count as warm.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from berth_operator.api.sandboxpool import SandboxPoolSpec
from berth_operator.render.sandbox.names import (
    CLAIM_LABEL,
    STATE_CLAIMED,
    STATE_LABEL,
    STATE_WARM,
    TEMPLATE_HASH_LABEL,
)

DEFAULT_BATCH = 50
EXPECTATION_TIMEOUT = 60.0
"""Seconds after which an unobserved write is forgotten (its watch event was lost)."""

PodState = Literal["warm", "claimed", "other"]

# Why a Pod is deleted (PoolPlan.reasons values).
DELETE_FAILED = "Failed"
DELETE_NOT_READY = "NotReadyInTime"
DELETE_STALE = "StaleTemplate"
DELETE_SCALE_DOWN = "ScaleDown"
DELETE_OVER_MAX = "OverMaxSize"


def parse_time(value: str | None) -> dt.datetime | None:
    """An RFC 3339 timestamp as written by the API server (``2026-12-03T08:00:00Z``)."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(value: dt.datetime) -> str:
    """RFC 3339 in UTC with a trailing Z, second precision (metav1.Time)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    """The Pod's Ready condition is True and it is not being deleted."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


@dataclass(frozen=True)
class PodInfo:
    """What the decisions need to know about one Pod."""

    name: str
    state: PodState
    ready: bool
    terminating: bool
    failed: bool
    template_hash: str | None
    created: dt.datetime | None
    claim: str | None

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> PodInfo:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        raw = labels.get(STATE_LABEL)
        state: PodState = (
            "warm" if raw == STATE_WARM else "claimed" if raw == STATE_CLAIMED else "other"
        )
        phase = (pod.get("status") or {}).get("phase")
        return cls(
            name=meta.get("name", ""),
            state=state,
            ready=is_pod_ready(pod),
            terminating=bool(meta.get("deletionTimestamp")),
            failed=phase in {"Failed", "Succeeded"},
            template_hash=labels.get(TEMPLATE_HASH_LABEL),
            created=parse_time(meta.get("creationTimestamp")),
            claim=labels.get(CLAIM_LABEL),
        )


@dataclass(frozen=True)
class Expectations:
    """Creates and deletes the daemon issued and has not observed yet (name -> when)."""

    creating: Mapping[str, dt.datetime] = field(default_factory=dict)
    deleting: Mapping[str, dt.datetime] = field(default_factory=dict)

    def created(self, names: Iterable[str], now: dt.datetime) -> Expectations:
        return replace(self, creating={**self.creating, **dict.fromkeys(names, now)})

    def deleted(self, names: Iterable[str], now: dt.datetime) -> Expectations:
        return replace(self, deleting={**self.deleting, **dict.fromkeys(names, now)})

    def settle(
        self,
        pods: Iterable[Mapping[str, Any]],
        now: dt.datetime,
        timeout: float = EXPECTATION_TIMEOUT,
    ) -> Expectations:
        """Forget creates now visible and deletes now gone (or terminating), and any
        expectation older than ``timeout`` seconds."""
        infos = {i.name: i for i in map(PodInfo.of, pods)}
        fresh = now - dt.timedelta(seconds=timeout)
        return Expectations(
            creating={n: t for n, t in self.creating.items() if n not in infos and t > fresh},
            deleting={
                n: t
                for n, t in self.deleting.items()
                if n in infos and not infos[n].terminating and t > fresh
            },
        )

    @property
    def empty(self) -> bool:
        return not self.creating and not self.deleting


@dataclass(frozen=True)
class PoolPlan:
    """One pass of the pool daemon: what to write, and the counts for the status."""

    create: int
    delete: tuple[str, ...]
    reasons: Mapping[str, str]
    warm: int
    """Warm Pods kept after this plan (Ready or starting), not counting pending creates."""
    ready: int
    """Ready warm Pods kept after this plan."""
    claimed: int
    pending: int
    """Creates issued earlier and not yet visible."""
    stale: int
    """Kept warm Pods of an older template (OnReplenish)."""
    blocked: int
    """Shortfall that ``maxSize`` prevented creating."""
    requeue_after: float | None
    """Seconds until a starting warm Pod passes its grace period (then plan again)."""

    @property
    def settled(self) -> bool:
        """Nothing to write and nothing in flight."""
        return self.create == 0 and not self.delete and self.pending == 0


def _age(info: PodInfo, now: dt.datetime) -> float:
    return 0.0 if info.created is None else (now - info.created).total_seconds()


def _removal_order(infos: Iterable[PodInfo], thash: str) -> list[PodInfo]:
    """Not-Ready first, then stale, then the newest (they cost the least to lose)."""
    return sorted(
        infos,
        key=lambda i: (
            i.ready,
            i.template_hash == thash,
            -(i.created.timestamp() if i.created else float("inf")),
            i.name,
        ),
    )


def plan_pool(
    spec: SandboxPoolSpec,
    pods: Sequence[Mapping[str, Any]],
    template_hash: str,
    now: dt.datetime,
    expectations: Expectations | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> PoolPlan:
    """Decide one pass for a pool from all of its Pods (see the module docstring)."""
    exp = expectations or Expectations()
    infos = [PodInfo.of(p) for p in pods]
    seen = {i.name for i in infos}
    live = [i for i in infos if not i.terminating and i.name not in exp.deleting]
    claimed = [i for i in live if i.state == "claimed"]
    warm = [i for i in live if i.state == "warm"]
    pending = len([n for n in exp.creating if n not in seen])
    grace = spec.readiness_grace_period_seconds
    recreate = spec.update_strategy.type == "Recreate"

    reasons: dict[str, str] = {}
    for i in warm:
        if i.failed:
            reasons[i.name] = DELETE_FAILED
        elif not i.ready and _age(i, now) >= grace:
            reasons[i.name] = DELETE_NOT_READY
        elif recreate and i.template_hash != template_hash:
            reasons[i.name] = DELETE_STALE
    kept = [i for i in warm if i.name not in reasons]

    excess = len(kept) + pending - spec.replicas
    for i in _removal_order(kept, template_hash)[: max(0, excess)]:
        reasons[i.name] = DELETE_SCALE_DOWN
    kept = [i for i in kept if i.name not in reasons]

    over = len(claimed) + len(kept) + pending - spec.max_size
    for i in _removal_order(kept, template_hash)[: max(0, over)]:
        reasons[i.name] = DELETE_OVER_MAX
    kept = [i for i in kept if i.name not in reasons]

    shortfall = max(0, spec.replicas - len(kept) - pending)
    room = max(0, spec.max_size - len(claimed) - len(kept) - pending)
    create = min(shortfall, room, max(0, batch_size))

    waits = [grace - _age(i, now) for i in kept if not i.ready]
    return PoolPlan(
        create=create,
        delete=tuple(sorted(reasons)),
        reasons=reasons,
        warm=len(kept),
        ready=sum(1 for i in kept if i.ready),
        claimed=len(claimed),
        pending=pending,
        stale=sum(1 for i in kept if i.template_hash != template_hash),
        blocked=max(0, shortfall - room),
        requeue_after=max(0.0, min(waits)) if waits else None,
    )


def pick_warm_pod(
    pods: Iterable[Mapping[str, Any]],
    template_hash: str,
    *,
    key: str = "",
    exclude: Collection[str] = (),
) -> Mapping[str, Any] | None:
    """A Ready warm Pod for a claim, or None.

    Pods of the current template go first (OnReplenish uses stale ones only when no
    current one is Ready). Among equals the pick is spread by ``key`` (the claim's
    name), so concurrent claims rarely race for the same Pod; ``exclude`` holds Pods
    already being adopted or that just lost a race.
    """
    ready = [
        p
        for p in pods
        if (info := PodInfo.of(p)).state == "warm"
        and info.ready
        and not info.failed
        and info.name not in exclude
    ]
    if not ready:
        return None
    current = [p for p in ready if PodInfo.of(p).template_hash == template_hash]
    group = sorted(current or ready, key=lambda p: str(p["metadata"]["name"]))
    index = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % len(group)
    return group[index]
