"""Status and conditions of SandboxPools and SandboxClaims (kstatus-compatible).

Both kinds carry ``Ready`` (the positive summary ``kubectl wait`` uses), ``Reconciling``
(True while work is in flight) and ``Stalled`` (True when no progress is possible
without a change elsewhere), each with ``observedGeneration``; transition times are
kept while a status does not change. ``status_patch`` (render.status) turns a new
status into a merge patch only when something changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from berth_operator.api import sandboxclaim as sc
from berth_operator.api.sandboxpool import SandboxPoolSpec
from berth_operator.render.meta import Subject
from berth_operator.render.pod_health import stuck_container
from berth_operator.render.sandbox.names import PoolNames
from berth_operator.render.sandbox.pool import PodInfo, PoolPlan
from berth_operator.render.status import Verdict
from berth_operator.render.status import conditions as status_conditions

ORDER = ("Ready", "Reconciling", "Stalled")

# Pool reasons.
POOL_AVAILABLE = "Available"
POOL_REPLENISHING = "Replenishing"
POOL_MAX_SIZE = "MaxSizeReached"
POOL_INVALID = "InvalidSpec"


def conditions(
    verdicts: Mapping[str, Verdict],
    generation: int,
    previous: Sequence[Mapping[str, Any]] | None,
    now: str,
) -> list[dict[str, Any]]:
    """metav1.Conditions for ``ORDER``, keeping transition times of unchanged statuses."""
    return status_conditions(verdicts, generation, previous, now, ORDER)


def stalled(reason: str, message: str) -> dict[str, Verdict]:
    return {
        "Ready": Verdict(False, reason, message),
        "Reconciling": Verdict(False, "Stalled", "no progress possible until fixed"),
        "Stalled": Verdict(True, reason, message),
    }


def pool_verdicts(spec: SandboxPoolSpec, plan: PoolPlan) -> dict[str, Verdict]:
    """Ready when the warm Pods are Ready (stale ones count under OnReplenish)."""
    counts = f"{plan.ready}/{spec.replicas} warm Pods ready, {plan.claimed} claimed"
    if plan.stale:
        counts += f", {plan.stale} of an older template"
    busy = not plan.settled
    if plan.ready >= spec.replicas:
        return {
            "Ready": Verdict(True, POOL_AVAILABLE, counts),
            "Reconciling": Verdict(
                busy, "Progressing" if busy else "ReconciliationSucceeded", counts
            ),
            "Stalled": Verdict(False, "NotStalled", "no problem found"),
        }
    if plan.blocked and plan.create == 0 and plan.pending == 0:
        msg = (
            f"{counts}; maxSize {spec.max_size} reached (warm plus claimed): "
            "warm Pods come back as claims are released"
        )
        return {
            "Ready": Verdict(False, POOL_MAX_SIZE, msg),
            "Reconciling": Verdict(False, "WaitingForCapacity", msg),
            "Stalled": Verdict(False, "NotStalled", "capacity frees up as claims end"),
        }
    return {
        "Ready": Verdict(False, POOL_REPLENISHING, counts),
        "Reconciling": Verdict(True, "Progressing", counts),
        "Stalled": Verdict(False, "NotStalled", "making progress"),
    }


def stuck_warm_pods(
    pods: Sequence[Mapping[str, Any]], template_hash: str
) -> tuple[str, str] | None:
    """(reason, message) when a warm Pod of the current template cannot start (a wrong
    authProxy or template image, a missing Secret): the pool is Stalled, not Replenishing.

    Pods of an older template do not count: they are being replaced by the fix.
    """
    current = [
        p for p in pods if (i := PodInfo.of(p)).state == "warm" and i.template_hash == template_hash
    ]
    stuck = stuck_container(current)
    return None if stuck is None else (stuck.reason, stuck.message("warm sandbox Pods"))


def pool_status(
    pool: Subject,
    spec: SandboxPoolSpec | None,
    plan: PoolPlan | None,
    template_hash: str | None,
    previous: Mapping[str, Any] | None,
    now: str,
    *,
    problem: tuple[str, str] | None = None,
    invalid: str | None = None,
) -> dict[str, Any]:
    """The pool's ``.status`` (without ``kopf``).

    ``problem`` is ``(reason, message)`` of something only a change elsewhere fixes
    (a rule Secret missing, Pods refused by admission or quota): Stalled.
    """
    prev = (previous or {}).get("conditions")
    names = PoolNames(pool.name)
    out: dict[str, Any] = {"observedGeneration": pool.generation, "selector": names.warm_selector()}
    if spec is None or invalid is not None:
        verdicts = stalled(POOL_INVALID, invalid or "the spec is invalid")
    elif problem is not None:
        verdicts = stalled(*problem)
    elif plan is not None:
        verdicts = pool_verdicts(spec, plan)
    else:
        verdicts = {
            "Ready": Verdict(False, POOL_REPLENISHING, "not observed yet"),
            "Reconciling": Verdict(True, "Progressing", "not observed yet"),
            "Stalled": Verdict(False, "NotStalled", "making progress"),
        }
    out["conditions"] = conditions(verdicts, pool.generation, prev, now)
    if plan is not None:
        out.update({"replicas": plan.warm, "readyReplicas": plan.ready, "claimed": plan.claimed})
    else:
        for k in ("replicas", "readyReplicas", "claimed"):
            if previous and k in previous:
                out[k] = previous[k]
    if template_hash is not None:
        out["templateHash"] = template_hash
    return out


TERMINAL = frozenset({sc.REASON_EXPIRED, sc.REASON_SANDBOX_LOST})
STALLED_REASONS = frozenset(
    {
        sc.REASON_POOL_NOT_FOUND,
        sc.REASON_POOL_INVALID,
        sc.REASON_POOL_EXHAUSTED,
        sc.REASON_INVALID_SPEC,
        sc.REASON_AGENT_AUTH_UNAVAILABLE,
        *TERMINAL,
    }
)


@dataclass(frozen=True)
class ClaimView:
    """Where a claim stands; ``reason`` is one of the ``REASON_*`` of api.sandboxclaim."""

    reason: str
    message: str
    pod_name: str | None = None
    pod_ip: str | None = None
    launch_type: str | None = None
    bound_at: str | None = None
    expires_at: str | None = None
    finished_at: str | None = None
    token_secret_name: str | None = None


def claim_verdicts(view: ClaimView) -> dict[str, Verdict]:
    """Bound: Ready. Pending: Reconciling. PoolExhausted, PoolNotFound, PoolInvalid and
    InvalidSpec: Stalled (the operator retries; a client waiting for Ready can fail
    fast). Expired and SandboxLost: Stalled for good."""
    if view.reason == sc.REASON_BOUND:
        return {
            "Ready": Verdict(True, sc.REASON_BOUND, view.message),
            "Reconciling": Verdict(False, "ReconciliationSucceeded", "bound"),
            "Stalled": Verdict(False, "NotStalled", "no problem found"),
        }
    if view.reason in STALLED_REASONS:
        return stalled(view.reason, view.message)
    return {
        "Ready": Verdict(False, view.reason, view.message),
        "Reconciling": Verdict(True, "Progressing", view.message),
        "Stalled": Verdict(False, "NotStalled", "making progress"),
    }


def claim_status(
    claim: Subject, view: ClaimView, previous: Mapping[str, Any] | None, now: str
) -> dict[str, Any]:
    """The claim's ``.status`` (without ``kopf``)."""
    prev = (previous or {}).get("conditions")
    out: dict[str, Any] = {
        "observedGeneration": claim.generation,
        "conditions": conditions(claim_verdicts(view), claim.generation, prev, now),
    }
    fields = {
        "podName": view.pod_name,
        "podIP": view.pod_ip,
        "launchType": view.launch_type,
        "boundAt": view.bound_at,
        "expiresAt": view.expires_at,
        "finishedAt": view.finished_at,
        "tokenSecretName": view.token_secret_name,
    }
    out.update({k: v for k, v in fields.items() if v is not None})
    return out
