"""SandboxClaim end to end on a real control plane: concurrent binding, cold starts up to
maxSize, PoolExhausted and PoolNotFound, deletion, expiry, and the runtime's claim API."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes
import pytest
from berth_runtime.sandbox.claims import ClaimFailed, SandboxClaims, derive_token

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import OperatorProcess, start_operator
from tests.cluster.sandbox_harness import (
    CLAIM,
    POOL,
    apply,
    berth_crds,
    claim,
    cleanup_sandboxes,
    cond,
    get_json,
    live,
    pods,
    poll,
    pool,
    sandbox_crds,
    sandbox_operator,
    wait_claim,
    wait_pool_ready,
    warm_pods,
)

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds", "sandbox_crds", "sandbox_operator"]


def create_claims(
    api_client: kubernetes.client.ApiClient, namespace: str, bodies: list[dict[str, Any]]
) -> None:
    """POST every claim at once from parallel threads (a real burst)."""
    api = kubernetes.client.CustomObjectsApi(api_client)
    with ThreadPoolExecutor(max_workers=len(bodies)) as ex:
        list(
            ex.map(
                lambda b: api.create_namespaced_custom_object(
                    "berth.dev", "v1alpha1", namespace, "sandboxclaims", b
                ),
                bodies,
            )
        )


def claims_by_name(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in get_json(kubectl, namespace, CLAIM)["items"]}


def test_fifty_concurrent_claims_bind_to_distinct_pods(
    sandbox_operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    api_client: kubernetes.client.ApiClient,
) -> None:
    apply(kubectl, namespace, pool("burst", replicas=30, max_size=80))
    wait_pool_ready(kubectl, namespace, "burst", 30, timeout=120)
    names = [f"c{i:02d}" for i in range(50)]
    create_claims(api_client, namespace, [claim(n, "burst") for n in names])

    def all_ready() -> dict[str, dict[str, Any]] | None:
        items = claims_by_name(kubectl, namespace)
        ok = len(items) == 50 and all(
            cond(c, "Ready").get("status") == "True" for c in items.values()
        )
        return items if ok else None

    items: dict[str, dict[str, Any]] = poll(all_ready, 120, "50 Ready claims")
    pod_names = [c["status"]["podName"] for c in items.values()]
    assert len(set(pod_names)) == 50, "two claims share a Pod"
    launches = [c["status"]["launchType"] for c in items.values()]
    assert launches.count("warm") >= 30  # the 30 warm ones, then cold or refilled warm ones
    claimed = {p["metadata"]["name"]: p for p in live(pods(kubectl, namespace, "berth.dev/claim"))}
    for name, c in items.items():
        pod = claimed[c["status"]["podName"]]
        assert pod["metadata"]["labels"]["berth.dev/claim"] == name
        assert "berth.dev/pool" not in pod["metadata"]["labels"]
        owners = pod["metadata"]["ownerReferences"]
        assert [o["uid"] for o in owners] == [c["metadata"]["uid"]]
        assert c["status"]["podIP"] == pod["status"]["podIP"]
        token = kubectl(
            "get", "secret", f"{name}-executor", "-n", namespace, "-o", "jsonpath={.data.token}"
        ).stdout
        import base64

        digest = hashlib.sha256(base64.b64decode(token)).hexdigest()
        assert pod["metadata"]["annotations"]["berth.dev/executor-token-sha256"] == digest
    assert len(claimed) == 50  # no Pod was adopted twice, none left half-bound
    body = wait_pool_ready(kubectl, namespace, "burst", 30, timeout=120)  # refilled
    assert body["status"]["claimed"] == 50


def test_empty_pool_cold_starts_up_to_max_size_then_reports_exhausted(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, pool("cold", replicas=0, max_size=3))
    wait_pool_ready(kubectl, namespace, "cold", 0)
    apply(kubectl, namespace, *(claim(f"k{i}", "cold") for i in range(3)))
    for i in range(3):
        body = wait_claim(kubectl, namespace, f"k{i}")
        assert body["status"]["launchType"] == "cold"
    apply(kubectl, namespace, claim("k3", "cold"))
    body = wait_claim(kubectl, namespace, "k3", "PoolExhausted")
    assert cond(body, "Stalled")["status"] == "True"
    assert "maxSize 3" in cond(body, "Stalled")["message"]
    assert len(live(pods(kubectl, namespace, "berth.dev/from-pool=cold"))) == 3
    # Releasing a claim frees room: the waiting claim binds.
    kubectl("delete", CLAIM, "k0", "-n", namespace)
    body = wait_claim(kubectl, namespace, "k3")
    assert body["status"]["launchType"] == "cold"
    assert cond(body, "Stalled")["status"] == "False"


def test_claim_on_missing_pool_waits_for_it(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, claim("early", "later"))
    body = wait_claim(kubectl, namespace, "early", "PoolNotFound")
    assert "SandboxPool later not found" in cond(body, "Ready")["message"]
    apply(kubectl, namespace, pool("later", replicas=1, max_size=2))
    wait_claim(kubectl, namespace, "early")


def test_deleting_a_claim_deletes_its_pod(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, pool("del", replicas=1, max_size=3))
    wait_pool_ready(kubectl, namespace, "del", 1)
    apply(kubectl, namespace, claim("one", "del"))
    pod = wait_claim(kubectl, namespace, "one")["status"]["podName"]
    kubectl("delete", CLAIM, "one", "-n", namespace)
    poll(
        lambda: not live(pods(kubectl, namespace, "berth.dev/claim=one")),
        30,
        f"Pod {pod} deleted",
    )
    wait_pool_ready(kubectl, namespace, "del", 1)


def test_max_lifetime_expires_the_claim_and_ttl_deletes_it(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        pool("life", replicas=1, max_size=3, lifecycle={"maxLifetime": "3s"}),
    )
    wait_pool_ready(kubectl, namespace, "life", 1)
    apply(
        kubectl,
        namespace,
        claim("short", "life"),
        claim("ttl", "life", lifecycle={"ttlSecondsAfterFinished": 1}),
    )
    bound = wait_claim(kubectl, namespace, "short")
    assert bound["status"]["expiresAt"]
    pod = bound["status"]["podName"]
    body = wait_claim(kubectl, namespace, "short", "Expired", timeout=30)
    assert cond(body, "Stalled")["status"] == "True"
    assert "maxLifetime 3s" in cond(body, "Ready")["message"]
    assert body["status"]["finishedAt"]
    poll(lambda: not live(pods(kubectl, namespace, "berth.dev/claim=short")), 30, f"{pod} deleted")
    # The claim with ttlSecondsAfterFinished disappears after expiring.
    poll(
        lambda: (
            not kubectl(
                "get", CLAIM, "ttl", "-n", namespace, "--ignore-not-found", "-o", "name"
            ).stdout.strip()
        ),
        40,
        "claim ttl deleted",
    )
    assert kubectl("get", CLAIM, "short", "-n", namespace, "-o", "name").stdout.strip()


def test_idle_timeout_counts_from_the_last_activity(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        pool("idle", replicas=2, max_size=4, lifecycle={"idleTimeout": "4s"}),
    )
    wait_pool_ready(kubectl, namespace, "idle", 2)
    apply(kubectl, namespace, claim("busy", "idle"), claim("quiet", "idle"))
    wait_claim(kubectl, namespace, "busy")
    wait_claim(kubectl, namespace, "quiet")
    # "busy" is touched in the future: it outlives "quiet".
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kubectl(
        "annotate",
        CLAIM,
        "busy",
        "-n",
        namespace,
        f"berth.dev/last-activity={later}",
        "--overwrite",
    )
    body = wait_claim(kubectl, namespace, "quiet", "Expired", timeout=30)
    assert "idleTimeout 4s" in cond(body, "Ready")["message"]
    assert cond(get_json(kubectl, namespace, CLAIM, "busy"), "Ready")["status"] == "True"


def test_shutdown_time_in_the_past_expires_without_binding(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, pool("st", replicas=1, max_size=2))
    wait_pool_ready(kubectl, namespace, "st", 1)
    apply(
        kubectl,
        namespace,
        claim("past", "st", lifecycle={"shutdownTime": "2020-01-01T00:00:00Z"}),
    )
    body = wait_claim(kubectl, namespace, "past", "Expired")
    assert "podName" not in body["status"]
    assert len(warm_pods(kubectl, namespace, "st")) == 1


def test_claim_api_ensure_wait_release(
    sandbox_operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    api_client: kubernetes.client.ApiClient,
) -> None:
    apply(kubectl, namespace, pool("api", replicas=2, max_size=4))
    wait_pool_ready(kubectl, namespace, "api", 2)
    client = SandboxClaims(api_client)
    key = "7e" * 32  # the AgentDeployment's BERTH_SANDBOX_TOKEN_KEY

    async def scenario() -> None:
        thread = "6f1c1b9e-1f7e-4a9b-9d1e-0c4b8f1d2a33"
        first, second = await asyncio.gather(
            client.ensure_claim(namespace, "api", thread_id=thread, token_key=key),
            client.ensure_claim(namespace, "api", thread_id=thread, token_key=key),
        )
        assert first.name == second.name  # one claim per thread, even when asked twice at once
        bound = await client.wait_ready(first, timeout=30)
        # Any replica derives the same token from the key and the claim's name.
        assert bound.token == derive_token(key, first.name) and bound.bound_at.endswith("Z")
        pod = get_json(kubectl, namespace, "pod", bound.pod_name)
        assert pod["status"]["podIP"] == bound.pod_ip
        digest = hashlib.sha256(bound.token.encode()).hexdigest()
        assert pod["metadata"]["annotations"]["berth.dev/executor-token-sha256"] == digest
        body = get_json(kubectl, namespace, CLAIM, first.name)
        assert body["spec"]["executorTokenSHA256"] == digest
        assert "tokenSecretName" not in body["status"]
        # The operator made no token Secret: the runtime needs no Secret access at all.
        got = kubectl("get", "secret", f"{first.name}-executor", "-n", namespace, check=False)
        assert got.returncode != 0 and "NotFound" in got.stderr
        assert pod["metadata"]["labels"]["berth.dev/thread-id"] == thread
        again = await client.ensure_claim(namespace, "api", thread_id=thread, token_key=key)
        assert again == first and again.token == bound.token
        await client.touch(first)  # idleTimeout counts from this annotation
        touched = get_json(kubectl, namespace, CLAIM, first.name)["metadata"]["annotations"]
        assert touched["berth.dev/last-activity"].endswith("Z")
        other = await client.ensure_claim(namespace, "api", assistant_id="agent", token_key=key)
        assert other.name != first.name
        assert (await client.wait_ready(other, timeout=30)).pod_name != bound.pod_name
        await client.release(first)
        poll(
            lambda: not live(pods(kubectl, namespace, f"berth.dev/claim={first.name}")),
            30,
            "the released claim's Pod deleted",
        )
        await client.release(first)  # idempotent
        # A claim that cannot bind in time: TimeoutError names the reason.
        missing = await client.ensure_claim(namespace, "nope", thread_id=thread, token_key=key)
        with pytest.raises(TimeoutError, match="PoolNotFound"):
            await client.wait_ready(missing, timeout=3)
        expired = await client.ensure_claim(namespace, "api", assistant_id="old", token_key=key)
        kubectl("delete", CLAIM, expired.name, "-n", namespace, "--wait=false")
        with pytest.raises((ClaimFailed, TimeoutError)):
            await client.wait_ready(expired, timeout=5)
        # A claim without a token hash (hand-made): its token is only in a Secret the
        # runtime may not read, so waiting fails at once and names the missing field.
        by_hand = await client.ensure_claim(namespace, "api", assistant_id="by-hand")
        assert by_hand.token_sha256 is None
        with pytest.raises(ClaimFailed, match=r"spec\.executorTokenSHA256"):
            await client.wait_ready(by_hand, timeout=30)

    asyncio.run(scenario())
    assert json.loads(kubectl("get", POOL, "api", "-n", namespace, "-o", "json").stdout)


def test_operator_restart_keeps_bindings_and_binds_claims_made_while_down(
    sandbox_crds: None, kube_env: dict[str, str], kubectl: Kubectl, namespace: str
) -> None:
    op = start_operator(kube_env, namespace)
    try:
        apply(kubectl, namespace, pool("rs", replicas=2, max_size=5))
        wait_pool_ready(kubectl, namespace, "rs", 2)
        apply(kubectl, namespace, claim("before", "rs"))
        pod = wait_claim(kubectl, namespace, "before")["status"]["podName"]
        op.stop()
        apply(kubectl, namespace, claim("during", "rs"))
        op = start_operator(kube_env, namespace)
        wait_claim(kubectl, namespace, "during")
        wait_pool_ready(kubectl, namespace, "rs", 2)
        # The old binding is kept: same Pod, and no second Pod for either claim.
        assert get_json(kubectl, namespace, CLAIM, "before")["status"]["podName"] == pod
        for name in ("before", "during"):
            assert len(live(pods(kubectl, namespace, f"berth.dev/claim={name}"))) == 1
        assert "Traceback" not in op.log(), op.log()
    finally:
        cleanup_sandboxes(kubectl, namespace)
        op.stop()
