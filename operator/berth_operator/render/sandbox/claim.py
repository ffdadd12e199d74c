"""Decisions and objects of claim binding: warm or cold, the adoption patch, the token
Secret (only for claims without ``executorTokenSHA256``), and when a claim expires.

Binding a warm Pod is one JSON merge patch carrying the Pod's resourceVersion (the
effect layer adds it): labels move from the pool to the claim, the owner reference
moves to the claim (so deleting the claim deletes the sandbox, and the pool no longer
counts the Pod as warm), and the executor token's hash lands in an annotation that the
executor reads through the downwardAPI volume.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from berth_operator.api.sandboxclaim import (
    REASON_EXPIRED,
    REASON_POOL_EXHAUSTED,
    SandboxClaimSpec,
)
from berth_operator.api.sandboxpool import PoolLifecycle, SandboxPoolSpec
from berth_operator.render.meta import Subject, owner_reference
from berth_operator.render.sandbox.names import (
    CLAIM_LABEL,
    POOL_LABEL,
    TOKEN_KEY,
    child_metadata,
    token_secret_name,
)
from berth_operator.render.sandbox.pod import Binding, bound_annotations, bound_labels
from berth_operator.render.sandbox.pool import PodInfo, pick_warm_pod

TOKEN_BYTES = 32


def derive_token(pool_key: bytes, pod_name: str) -> str:
    """A Pod's executor token, derived from the pool's secret key (HMAC-SHA256, hex).

    Lets a warm Pod carry its token hash from creation (see ``pod.warm_pod``)
    without a Secret per Pod: at adoption the operator recomputes the token and writes it
    into the claim's ``<claim>-executor`` Secret. Pods are never reused, so a Pod's
    token is its claim's token.
    """
    if len(pool_key) < TOKEN_BYTES:
        raise ValueError(f"the pool key must be at least {TOKEN_BYTES} bytes")
    return hmac.new(pool_key, pod_name.encode(), hashlib.sha256).hexdigest()


def token_sha256(token: str) -> str:
    """Hex sha256 of the executor token (what the Pod annotation holds)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(random_bytes: bytes) -> str:
    """The executor token: ``TOKEN_BYTES`` random bytes (from ``os.urandom``), hex."""
    if len(random_bytes) < TOKEN_BYTES:
        raise ValueError(f"need {TOKEN_BYTES} random bytes")
    return random_bytes[:TOKEN_BYTES].hex()


def token_secret(claim: Subject, token: str) -> dict[str, Any]:
    """Secret ``<claim>-executor`` (key ``token``), owned by the claim: only for claims made
    without ``executorTokenSHA256`` (by hand); the runtime never reads it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": child_metadata(
            claim, token_secret_name(claim.name), labels={CLAIM_LABEL: claim.name}
        ),
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def token_from_secret(secret: Mapping[str, Any] | None) -> str | None:
    raw = ((secret or {}).get("data") or {}).get(TOKEN_KEY)
    if not raw:
        return None
    try:
        return base64.b64decode(raw).decode()
    except ValueError:
        return None


def adoption_patch(binding: Binding) -> dict[str, Any]:
    """JSON merge patch turning a warm Pod into the claim's Pod (add the resourceVersion).

    ``berth.dev/pool`` is removed (the Pod leaves the pool's warm selector);
    ``berth.dev/from-pool`` and the template hash stay; ``ownerReferences`` is replaced
    by the claim alone (merge patches replace lists).
    """
    labels: dict[str, Any] = {POOL_LABEL: None, **bound_labels(binding, "warm")}
    return {
        "metadata": {
            "labels": labels,
            "annotations": bound_annotations(binding),
            "ownerReferences": [owner_reference(binding.claim)],
        }
    }


def generates_token(spec: SandboxClaimSpec) -> bool:
    """Whether the operator makes the token (Secret ``<claim>-executor``): only when the
    claimant did not name its hash in ``spec.executorTokenSHA256`` (hand-made claims)."""
    return spec.executor_token_sha256 is None


def binding_of(claim: Subject, spec: SandboxClaimSpec, token: str | None, now: str) -> Binding:
    """The binding; the Pod's token hash is ``spec.executorTokenSHA256`` when set, else
    the hash of the generated ``token``."""
    if spec.executor_token_sha256 is not None:
        digest = spec.executor_token_sha256
    elif token is not None:
        digest = token_sha256(token)
    else:
        raise ValueError("a claim without executorTokenSHA256 needs a generated token")
    return Binding(
        claim=claim,
        token_sha256=digest,
        claimed_at=now,
        thread_id=spec.thread_id,
        assistant_id=spec.assistant_id,
    )


BindKind = Literal["warm", "cold", "exhausted"]


@dataclass(frozen=True)
class BindDecision:
    """How to give a claim its sandbox now."""

    kind: BindKind
    pod: Mapping[str, Any] | None = None
    """The warm Pod to adopt (kind ``warm``)."""
    reason: str = ""
    message: str = ""


def decide_binding(
    pool: SandboxPoolSpec,
    pods: Iterable[Mapping[str, Any]],
    template_hash: str,
    *,
    key: str,
    exclude: Collection[str] = (),
    pending_cold: int = 0,
) -> BindDecision:
    """Warm if a Ready warm Pod exists; else cold if the pool is under ``maxSize``
    (warm plus claimed plus ``pending_cold`` Pods being started); else exhausted.

    ``pods`` are all the pool's Pods (``berth.dev/from-pool``), live ones only matter.
    """
    pods = list(pods)
    warm = pick_warm_pod(pods, template_hash, key=key, exclude=exclude)
    if warm is not None:
        return BindDecision("warm", pod=warm)
    live = [i for i in map(PodInfo.of, pods) if not i.terminating and i.state != "other"]
    used = len(live) + pending_cold
    if used < pool.max_size:
        return BindDecision("cold", reason="NoWarmPod", message="no Ready warm Pod: cold start")
    return BindDecision(
        "exhausted",
        reason=REASON_POOL_EXHAUSTED,
        message=f"the pool has {used} of maxSize {pool.max_size} Pods and none is a Ready warm "
        "Pod; waiting for one",
    )


@dataclass(frozen=True)
class Expiry:
    """Whether a bound claim has expired, and when it will otherwise."""

    expired: bool
    reason: str = ""
    message: str = ""
    at: dt.datetime | None = None
    """When it expires (or expired): the earliest applicable deadline."""


def claim_expiry(
    spec: SandboxClaimSpec,
    lifecycle: PoolLifecycle | None,
    bound_at: dt.datetime | None,
    last_activity: dt.datetime | None,
    now: dt.datetime,
) -> Expiry:
    """Earliest of ``shutdownTime``, ``boundAt + maxLifetime`` and ``(last activity or
    boundAt) + idleTimeout``. Only ``shutdownTime`` applies before binding."""
    deadlines: list[tuple[dt.datetime, str]] = []
    if spec.lifecycle is not None and (shutdown := spec.lifecycle.shutdown_at) is not None:
        deadlines.append((shutdown, f"shutdownTime {spec.lifecycle.shutdown_time} reached"))
    if lifecycle is not None and bound_at is not None:
        if (life := lifecycle.max_lifetime_seconds) is not None:
            deadlines.append(
                (
                    bound_at + dt.timedelta(seconds=life),
                    f"maxLifetime {lifecycle.max_lifetime} since binding reached",
                )
            )
        if (idle := lifecycle.idle_timeout_seconds) is not None:
            since = max(last_activity or bound_at, bound_at)
            deadlines.append(
                (
                    since + dt.timedelta(seconds=idle),
                    f"idle for idleTimeout {lifecycle.idle_timeout}",
                )
            )
    if not deadlines:
        return Expiry(False)
    at, why = min(deadlines, key=lambda d: d[0])
    if at <= now:
        return Expiry(True, REASON_EXPIRED, why, at)
    return Expiry(False, at=at)


def fixed_expiry(
    spec: SandboxClaimSpec, lifecycle: PoolLifecycle | None, bound_at: dt.datetime | None
) -> dt.datetime | None:
    """``status.expiresAt``: the deadlines that do not move (no idleTimeout)."""
    out: list[dt.datetime] = []
    if spec.lifecycle and spec.lifecycle.shutdown_at:
        out.append(spec.lifecycle.shutdown_at)
    if lifecycle and bound_at and (life := lifecycle.max_lifetime_seconds) is not None:
        out.append(bound_at + dt.timedelta(seconds=life))
    return min(out) if out else None


def delete_after(spec: SandboxClaimSpec, finished_at: dt.datetime | None) -> dt.datetime | None:
    """When a finished claim itself is deleted (``ttlSecondsAfterFinished``), else None."""
    ttl = spec.lifecycle.ttl_seconds_after_finished if spec.lifecycle else None
    if ttl is None or finished_at is None:
        return None
    return finished_at + dt.timedelta(seconds=ttl)
