"""Claim binding decisions: adoption patch, warm/cold/exhausted, tokens, expiry."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import kubernetes_validate
from berth_operator.api.sandboxclaim import REASON_EXPIRED, REASON_POOL_EXHAUSTED
from berth_operator.api.sandboxpool import PoolLifecycle
from berth_operator.render.sandbox import claim as sc
from berth_operator.render.sandbox.names import (
    CLAIM_LABEL,
    FROM_POOL_LABEL,
    POOL_LABEL,
    STATE_LABEL,
    TEMPLATE_HASH_LABEL,
    TOKEN_HASH_ANNOTATION,
)
from berth_operator.render.sandbox.pod import warm_pod
from berth_operator.render.sandbox.pool import PodInfo, plan_pool

from tests.unit.operator.sandbox_factories import (
    HASH,
    IMAGES,
    NOW,
    claim_spec,
    claim_subject,
    pod,
    pool_spec,
    pool_subject,
)

TOKEN = "f" * 64


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def test_token_and_its_secret() -> None:
    token = sc.new_token(bytes(range(40)))
    assert token == bytes(range(32)).hex() and len(token) == 64
    secret = sc.token_secret(claim_subject("c1"), token)
    kubernetes_validate.validate(secret, "1.36", strict=True)
    assert secret["metadata"]["name"] == "c1-executor"
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "SandboxClaim"
    assert base64.b64decode(secret["data"]["token"]).decode() == token
    assert sc.token_from_secret(secret) == token
    assert sc.token_from_secret(None) is None
    assert sc.token_sha256(token) == hashlib.sha256(token.encode()).hexdigest()


def test_adoption_moves_a_warm_pod_to_the_claim() -> None:
    warm = pod("py-a")
    warm["metadata"]["ownerReferences"] = [
        {"apiVersion": "berth.dev/v1alpha1", "kind": "SandboxPool", "name": "py", "uid": "p"}
    ]
    binding = sc.binding_of(claim_subject("c1"), claim_spec(), TOKEN, "2026-12-03T08:00:00Z")
    adopted = _merge(warm, sc.adoption_patch(binding))
    meta = adopted["metadata"]
    assert POOL_LABEL not in meta["labels"]
    assert meta["labels"][CLAIM_LABEL] == "c1"
    assert meta["labels"][STATE_LABEL] == "claimed"
    assert meta["labels"]["berth.dev/launch"] == "warm"
    assert meta["labels"]["berth.dev/thread-id"] == "t-1"
    assert meta["labels"][FROM_POOL_LABEL] == "py"
    assert meta["labels"][TEMPLATE_HASH_LABEL] == HASH
    assert meta["annotations"][TOKEN_HASH_ANNOTATION] == sc.token_sha256(TOKEN)
    (owner,) = meta["ownerReferences"]
    assert owner["kind"] == "SandboxClaim" and owner["uid"] == "c1-uid" and owner["controller"]
    # The pool now counts it as claimed, not warm.
    p = plan_pool(pool_spec(replicas=1), [adopted], HASH, NOW)
    assert p.claimed == 1 and p.warm == 0 and p.create == 1
    assert PodInfo.of(adopted).claim == "c1"


def test_warm_pod_is_preferred() -> None:
    d = sc.decide_binding(pool_spec(), [pod("w1"), pod("s", ready=False)], HASH, key="c1")
    assert d.kind == "warm" and d.pod is not None and d.pod["metadata"]["name"] == "w1"


def test_cold_start_when_no_ready_warm_pod_and_room() -> None:
    pods = [pod("s", ready=False), pod("c", state="claimed", claim="k")]
    d = sc.decide_binding(pool_spec(maxSize=3), pods, HASH, key="c1")
    assert d.kind == "cold"


def test_exhausted_at_max_size_counting_cold_starts_in_flight() -> None:
    pods = [pod("s", ready=False), pod("c", state="claimed", claim="k")]
    d = sc.decide_binding(pool_spec(maxSize=3), pods, HASH, key="c1", pending_cold=1)
    assert d.kind == "exhausted" and d.reason == REASON_POOL_EXHAUSTED
    assert "maxSize 3" in d.message
    gone = [pod("g", terminating=True), pod("c", state="claimed", claim="k")]
    assert sc.decide_binding(pool_spec(maxSize=2), gone, HASH, key="c1").kind == "cold"
    claimed = [pod(f"c{i}", state="claimed", claim=f"k{i}") for i in range(2)]
    d = sc.decide_binding(pool_spec(replicas=0, maxSize=2), claimed, HASH, key="x")
    assert d.kind == "exhausted"


def test_excluded_warm_pods_fall_through_to_cold() -> None:
    d = sc.decide_binding(pool_spec(maxSize=5), [pod("w1")], HASH, key="c", exclude={"w1"})
    assert d.kind == "cold"


def _life(**fields: Any) -> PoolLifecycle:
    return PoolLifecycle.model_validate(fields)


def test_no_deadlines_never_expire() -> None:
    e = sc.claim_expiry(claim_spec(), _life(), NOW - dt.timedelta(days=300), None, NOW)
    assert not e.expired and e.at is None


def test_shutdown_time_applies_even_before_binding() -> None:
    spec = claim_spec(lifecycle={"shutdownTime": "2026-12-03T07:59:59Z"})
    e = sc.claim_expiry(spec, _life(), None, None, NOW)
    assert e.expired and e.reason == REASON_EXPIRED and "shutdownTime" in e.message
    later = claim_spec(lifecycle={"shutdownTime": "2026-12-03T09:00:00Z"})
    e = sc.claim_expiry(later, _life(), None, None, NOW)
    assert not e.expired and e.at == NOW + dt.timedelta(hours=1)


def test_max_lifetime_counts_from_binding() -> None:
    bound = NOW - dt.timedelta(hours=2)
    assert sc.claim_expiry(claim_spec(), _life(maxLifetime="2h"), bound, None, NOW).expired
    e = sc.claim_expiry(claim_spec(), _life(maxLifetime="3h"), bound, None, NOW)
    assert not e.expired and e.at == NOW + dt.timedelta(hours=1)


def test_idle_timeout_counts_from_last_activity() -> None:
    bound = NOW - dt.timedelta(hours=2)
    life = _life(idleTimeout="30m", maxLifetime="24h")
    e = sc.claim_expiry(claim_spec(), life, bound, None, NOW)
    assert e.expired and "idleTimeout 30m" in e.message
    active = NOW - dt.timedelta(minutes=10)
    e = sc.claim_expiry(claim_spec(), life, bound, active, NOW)
    assert not e.expired and e.at == NOW + dt.timedelta(minutes=20)
    # An activity stamp older than the binding does not shorten the new sandbox's life.
    fresh = NOW - dt.timedelta(minutes=1)
    e = sc.claim_expiry(claim_spec(), life, fresh, NOW - dt.timedelta(days=1), NOW)
    assert not e.expired


def test_earliest_deadline_wins() -> None:
    spec = claim_spec(lifecycle={"shutdownTime": "2026-12-03T08:10:00Z"})
    e = sc.claim_expiry(spec, _life(maxLifetime="5m"), NOW, None, NOW)
    assert e.at == NOW + dt.timedelta(minutes=5)
    assert sc.fixed_expiry(spec, _life(maxLifetime="5m", idleTimeout="1m"), NOW) == e.at
    assert sc.fixed_expiry(claim_spec(), _life(idleTimeout="1m"), NOW) is None


def test_ttl_after_finished() -> None:
    spec = claim_spec(lifecycle={"ttlSecondsAfterFinished": 60})
    assert sc.delete_after(spec, NOW) == NOW + dt.timedelta(seconds=60)
    assert sc.delete_after(spec, None) is None
    assert sc.delete_after(claim_spec(), NOW) is None
    zero = claim_spec(lifecycle={"ttlSecondsAfterFinished": 0})
    assert sc.delete_after(zero, NOW) == NOW


def test_derived_tokens_let_a_warm_pod_carry_its_hash_from_creation() -> None:
    key = bytes(range(32))
    token = sc.derive_token(key, "py-a")
    assert len(token) == 64 and token == sc.derive_token(key, "py-a")
    assert token != sc.derive_token(key, "py-b")
    assert token != sc.derive_token(bytes(32), "py-a")
    try:
        sc.derive_token(b"short", "py-a")
    except ValueError as e:
        assert "at least 32 bytes" in str(e)
    else:
        raise AssertionError("a short key was accepted")
    warm = warm_pod(
        pool_subject(), pool_spec(), "py-a", token_sha256=sc.token_sha256(token), images=IMAGES
    )
    assert warm["metadata"]["annotations"][TOKEN_HASH_ANNOTATION] == sc.token_sha256(token)
    binding = sc.binding_of(claim_subject("c1"), claim_spec(), token, "2026-12-03T08:00:00Z")
    adopted = _merge(warm, sc.adoption_patch(binding))
    # What the executor reads did not change: no kubelet refresh to wait for.
    assert (
        adopted["metadata"]["annotations"][TOKEN_HASH_ANNOTATION]
        == warm["metadata"]["annotations"][TOKEN_HASH_ANNOTATION]
    )


def test_claimant_named_token_hash_wins_and_needs_no_secret() -> None:
    named = claim_spec(executorTokenSHA256="cd" * 32)
    assert not sc.generates_token(named) and sc.generates_token(claim_spec())
    binding = sc.binding_of(claim_subject("c1"), named, None, "2026-12-03T08:00:00Z")
    adopted = _merge(pod("py-a"), sc.adoption_patch(binding))
    assert adopted["metadata"]["annotations"][TOKEN_HASH_ANNOTATION] == "cd" * 32
    try:
        sc.binding_of(claim_subject("c1"), claim_spec(), None, "2026-12-03T08:00:00Z")
    except ValueError as e:
        assert "executorTokenSHA256" in str(e)
    else:
        raise AssertionError("a claim without a hash was bound without a token")
