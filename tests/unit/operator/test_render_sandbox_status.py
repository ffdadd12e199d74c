"""Pool and claim status: kstatus conditions, counts, selector, transition times."""

from __future__ import annotations

from typing import Any

from berth_operator.api import sandboxclaim as api
from berth_operator.render.sandbox import status as st
from berth_operator.render.sandbox.pool import plan_pool
from berth_operator.render.status import status_patch

from tests.unit.operator.sandbox_factories import (
    HASH,
    NOW,
    claim_subject,
    pod,
    pool_spec,
    pool_subject,
)

T0 = "2026-12-03T07:00:00Z"
T1 = "2026-12-03T08:00:00Z"


def cond(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def pool_status(pods: list[dict[str, Any]], previous: Any = None, **fields: Any) -> dict[str, Any]:
    spec = pool_spec(**fields)
    plan = plan_pool(spec, pods, HASH, NOW)
    return st.pool_status(pool_subject(), spec, plan, HASH, previous, T1)


def test_ready_pool() -> None:
    s = pool_status([pod("a"), pod("b"), pod("c", state="claimed", claim="k")], replicas=2)
    assert s["replicas"] == 2 and s["readyReplicas"] == 2 and s["claimed"] == 1
    assert s["selector"] == "berth.dev/pool=py,berth.dev/sandbox-state=warm"
    assert s["observedGeneration"] == 2 and s["templateHash"] == HASH
    assert [c["type"] for c in s["conditions"]] == ["Ready", "Reconciling", "Stalled"]
    assert cond(s, "Ready")["status"] == "True" and cond(s, "Ready")["reason"] == "Available"
    assert "2/2 warm Pods ready, 1 claimed" in cond(s, "Ready")["message"]
    assert cond(s, "Reconciling")["status"] == "False"
    assert cond(s, "Stalled")["status"] == "False"
    assert all(c["observedGeneration"] == 2 for c in s["conditions"])


def test_replenishing_pool_is_reconciling() -> None:
    s = pool_status([pod("a", ready=False, age=5)], replicas=2)
    assert cond(s, "Ready")["status"] == "False" and cond(s, "Ready")["reason"] == "Replenishing"
    assert cond(s, "Reconciling")["status"] == "True"
    assert cond(s, "Stalled")["status"] == "False"
    assert s["replicas"] == 1 and s["readyReplicas"] == 0


def test_pool_at_max_size_says_so_without_claiming_progress() -> None:
    claimed = [pod(f"c{i}", state="claimed", claim=f"k{i}") for i in range(3)]
    s = pool_status(claimed, replicas=2, maxSize=3)
    ready = cond(s, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "MaxSizeReached"
    assert "maxSize 3 reached" in ready["message"]
    assert cond(s, "Reconciling")["status"] == "False"
    assert cond(s, "Stalled")["status"] == "False"


def test_stale_pods_show_in_the_message_but_do_not_block_ready() -> None:
    s = pool_status([pod("a", thash="old"), pod("b")], replicas=2)
    assert cond(s, "Ready")["status"] == "True"
    assert "1 of an older template" in cond(s, "Ready")["message"]


def test_problem_and_invalid_spec_stall() -> None:
    spec = pool_spec()
    s = st.pool_status(
        pool_subject(), spec, None, HASH, None, T1, problem=("SecretNotFound", "no 'openai-key'")
    )
    assert (
        cond(s, "Stalled")["status"] == "True" and cond(s, "Stalled")["reason"] == "SecretNotFound"
    )
    assert cond(s, "Ready")["status"] == "False"
    assert cond(s, "Reconciling")["status"] == "False"
    bad = st.pool_status(pool_subject(), None, None, None, None, T1, invalid="maxSize < replicas")
    assert cond(bad, "Stalled")["reason"] == "InvalidSpec"
    assert cond(bad, "Ready")["message"] == "maxSize < replicas"
    assert "replicas" not in bad and bad["selector"].startswith("berth.dev/pool=py")


def test_transition_times_are_kept_and_unchanged_status_needs_no_patch() -> None:
    pods = [pod("a"), pod("b")]
    first = pool_status(pods, replicas=2)
    old = {**first, "conditions": [{**c, "lastTransitionTime": T0} for c in first["conditions"]]}
    again = pool_status(pods, old, replicas=2)
    assert all(c["lastTransitionTime"] == T0 for c in again["conditions"])
    assert status_patch(again, {**old, "kopf": {"x": 1}}) is None
    changed = pool_status([pod("a")], old, replicas=2)
    assert cond(changed, "Ready")["lastTransitionTime"] == T1
    assert cond(changed, "Stalled")["lastTransitionTime"] == T0
    patch = status_patch(changed, old)
    assert patch is not None and patch["readyReplicas"] == 1


def claim_status(reason: str, **fields: Any) -> dict[str, Any]:
    view = st.ClaimView(reason=reason, message=f"{reason} message", **fields)
    return st.claim_status(claim_subject("c1"), view, None, T1)


def test_bound_claim() -> None:
    s = claim_status(
        api.REASON_BOUND,
        pod_name="py-a",
        pod_ip="10.0.0.5",
        launch_type="warm",
        bound_at=T1,
        token_secret_name="c1-executor",
    )
    assert cond(s, "Ready")["status"] == "True" and cond(s, "Ready")["reason"] == "Bound"
    assert cond(s, "Reconciling")["status"] == "False"
    assert cond(s, "Stalled")["status"] == "False"
    assert s["podName"] == "py-a" and s["podIP"] == "10.0.0.5" and s["launchType"] == "warm"
    assert s["boundAt"] == T1 and s["tokenSecretName"] == "c1-executor"
    assert s["observedGeneration"] == 1
    assert "expiresAt" not in s


def test_pending_claim_is_reconciling() -> None:
    s = claim_status(api.REASON_PENDING, pod_name="py-cold", launch_type="cold")
    assert cond(s, "Ready")["status"] == "False"
    assert cond(s, "Reconciling")["status"] == "True"
    assert cond(s, "Stalled")["status"] == "False"


def test_stalled_claim_reasons() -> None:
    for reason in (
        api.REASON_POOL_NOT_FOUND,
        api.REASON_POOL_EXHAUSTED,
        api.REASON_POOL_INVALID,
        api.REASON_EXPIRED,
        api.REASON_SANDBOX_LOST,
        api.REASON_INVALID_SPEC,
    ):
        s = claim_status(reason)
        assert cond(s, "Ready")["status"] == "False" and cond(s, "Ready")["reason"] == reason
        assert cond(s, "Stalled")["status"] == "True" and cond(s, "Stalled")["reason"] == reason
        assert cond(s, "Reconciling")["status"] == "False"


def _pulling(p: dict[str, Any], image: str) -> dict[str, Any]:
    """``p`` with its auth-proxy stuck on a pull, as the kubelet reports it."""
    p["spec"] = {"containers": [{"name": "auth-proxy", "image": image}]}
    p["status"]["phase"] = "Pending"
    p["status"]["containerStatuses"] = [
        {
            "name": "auth-proxy",
            "image": image,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{image}"',
                }
            },
        }
    ]
    return p


def test_a_warm_pod_stuck_on_its_image_stalls_the_pool() -> None:
    pods = [pod("w1"), _pulling(pod("w2", ready=False, age=5), "me/agent:nope")]
    problem = st.stuck_warm_pods(pods, HASH)
    assert problem is not None
    reason, message = problem
    assert reason == "ImagePullBackOff"
    assert "'auth-proxy'" in message and "'me/agent:nope'" in message
    spec = pool_spec()
    plan = plan_pool(spec, pods, HASH, NOW)
    first = st.pool_status(pool_subject(), spec, plan, HASH, None, T0, problem=problem)
    assert cond(first, "Stalled")["status"] == "True"
    assert cond(first, "Stalled")["reason"] == "ImagePullBackOff"
    assert cond(first, "Ready")["status"] == "False"
    assert cond(first, "Reconciling")["status"] == "False"
    again = st.pool_status(pool_subject(), spec, plan, HASH, first, T1, problem=problem)
    assert status_patch(again, first) is None


def test_stuck_pods_of_an_older_template_or_claimed_ones_do_not_stall_the_pool() -> None:
    old = _pulling(pod("w1", ready=False, thash="old0hash00000000"), "me/agent:nope")
    claimed = _pulling(pod("c1", state="claimed", ready=False, claim="x"), "me/agent:nope")
    assert st.stuck_warm_pods([old, claimed, pod("w2")], HASH) is None
