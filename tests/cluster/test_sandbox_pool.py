"""SandboxPool end to end on a real control plane: warm size, refill, update strategies,
scale subresource, deletion, bad specs. kwok makes the Pods Ready."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import OperatorProcess
from tests.cluster.sandbox_harness import (
    CLAIM,
    POOL,
    apply,
    berth_crds,
    claim,
    cond,
    get_json,
    live,
    pods,
    poll,
    pool,
    ready,
    sandbox_crds,
    sandbox_operator,
    wait_claim,
    wait_pool_ready,
    warm_pods,
)

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds", "sandbox_crds", "sandbox_operator"]


def test_pool_reaches_warm_size_with_children_and_status(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, pool("py", replicas=3, max_size=5))
    body = wait_pool_ready(kubectl, namespace, "py", 3)
    st = body["status"]
    assert st["replicas"] == 3 and st["claimed"] == 0
    assert st["selector"] == "berth.dev/pool=py,berth.dev/sandbox-state=warm"
    assert {c["type"] for c in st["conditions"]} == {"Ready", "Reconciling", "Stalled"}
    assert cond(body, "Stalled")["status"] == "False"

    uid = body["metadata"]["uid"]
    warm = warm_pods(kubectl, namespace, "py")
    assert len(warm) == 3
    for p in warm:
        assert p["metadata"]["ownerReferences"][0]["uid"] == uid
        assert p["metadata"]["labels"]["berth.dev/template-hash"] == st["templateHash"]
        names = [c["name"] for c in p["spec"]["containers"]]
        assert names == ["sandbox", "auth-proxy"]
    # Children: the CA Secret (valid PEM), bundle and proxy ConfigMaps, the NetworkPolicy.
    secret = get_json(kubectl, namespace, "secret", "py-ca")
    assert base64.b64decode(secret["data"]["tls.crt"]).startswith(b"-----BEGIN CERTIFICATE")
    config = get_json(kubectl, namespace, "configmap", "py-auth-proxy")
    assert "169.254.169.254/32" in json.loads(config["data"]["config.json"])["denyCidrs"]
    get_json(kubectl, namespace, "configmap", "py-ca-bundle")
    np = get_json(kubectl, namespace, "networkpolicy", "py-sandbox")
    assert np["spec"]["podSelector"] == {"matchLabels": {"berth.dev/from-pool": "py"}}

    # The CA is generated once: a restart-like spec change keeps it.
    kubectl("patch", POOL, "py", "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":2}}')
    wait_pool_ready(kubectl, namespace, "py", 2)
    again = get_json(kubectl, namespace, "secret", "py-ca")
    assert again["data"]["tls.key"] == secret["data"]["tls.key"]
    # Scaling down deleted one warm Pod, none other.
    assert len(warm_pods(kubectl, namespace, "py")) == 2


def test_scale_subresource_drives_warm_replicas(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, pool("sc", replicas=1, max_size=6))
    wait_pool_ready(kubectl, namespace, "sc", 1)
    kubectl("scale", f"{POOL}/sc", "-n", namespace, "--replicas=4")
    wait_pool_ready(kubectl, namespace, "sc", 4)
    scale = json.loads(
        kubectl(
            "get", "--raw", f"/apis/berth.dev/v1alpha1/namespaces/{namespace}/sandboxpools/sc/scale"
        ).stdout
    )
    assert scale["status"]["replicas"] == 4
    assert scale["status"]["selector"] == "berth.dev/pool=sc,berth.dev/sandbox-state=warm"


def test_pool_refills_after_claims(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, pool("rf", replicas=3, max_size=10))
    wait_pool_ready(kubectl, namespace, "rf", 3)
    before = {p["metadata"]["name"] for p in warm_pods(kubectl, namespace, "rf")}
    apply(kubectl, namespace, claim("c1", "rf"), claim("c2", "rf"))
    wait_claim(kubectl, namespace, "c1")
    wait_claim(kubectl, namespace, "c2")
    body = wait_pool_ready(kubectl, namespace, "rf", 3)
    assert body["status"]["claimed"] == 2
    after = {p["metadata"]["name"] for p in warm_pods(kubectl, namespace, "rf")}
    assert len(after - before) == 2  # two new warm Pods replaced the adopted ones


def test_update_strategy_recreate_replaces_stale_warm_pods_at_once(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        pool("rc", replicas=3, max_size=6, updateStrategy={"type": "Recreate"}),
    )
    old_hash = wait_pool_ready(kubectl, namespace, "rc", 3)["status"]["templateHash"]
    apply(kubectl, namespace, claim("keep", "rc"))
    bound = wait_claim(kubectl, namespace, "keep")["status"]["podName"]
    kubectl(
        "patch",
        POOL,
        "rc",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"template":{"image":"ghcr.io/berth-dev/sandbox-python:3.13"}}}',
    )

    def all_current() -> bool:
        body = get_json(kubectl, namespace, POOL, "rc")
        new_hash = body["status"].get("templateHash")
        warm = warm_pods(kubectl, namespace, "rc")
        return (
            new_hash != old_hash
            and len(warm) == 3
            and all(p["metadata"]["labels"]["berth.dev/template-hash"] == new_hash for p in warm)
            and all(ready(p) for p in warm)
        )

    poll(all_current, 90, "every warm Pod on the new template")
    images = {p["spec"]["containers"][0]["image"] for p in warm_pods(kubectl, namespace, "rc")}
    assert images == {"ghcr.io/berth-dev/sandbox-python:3.13"}
    # The claimed Pod is never touched by a template change.
    claimed = get_json(kubectl, namespace, "pod", bound)
    assert not claimed["metadata"].get("deletionTimestamp")
    assert claimed["metadata"]["labels"]["berth.dev/template-hash"] == old_hash


def test_update_strategy_on_replenish_keeps_stale_pods_until_claimed(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, pool("or", replicas=2, max_size=6))
    old_hash = wait_pool_ready(kubectl, namespace, "or", 2)["status"]["templateHash"]
    stale = {p["metadata"]["name"] for p in warm_pods(kubectl, namespace, "or")}
    kubectl(
        "patch",
        POOL,
        "or",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"template":{"env":[{"name":"MODE","value":"two"}]}}}',
    )
    body = poll(
        lambda: (
            (b := get_json(kubectl, namespace, POOL, "or"))["status"].get("templateHash")
            != old_hash
            and b["status"].get("observedGeneration") == b["metadata"]["generation"]
            and b
        ),
        30,
        "the new template hash in the status",
    )
    new_hash = body["status"]["templateHash"]
    # The stale warm Pods stay (and keep the pool Ready) ...
    assert {p["metadata"]["name"] for p in warm_pods(kubectl, namespace, "or")} == stale
    assert cond(body, "Ready")["status"] == "True"
    # ... a claim takes one (no current Pod is Ready), and its replacement is current.
    apply(kubectl, namespace, claim("a", "or"))
    taken = wait_claim(kubectl, namespace, "a")["status"]["podName"]
    assert taken in stale

    def replaced() -> bool:
        warm = warm_pods(kubectl, namespace, "or")
        hashes = sorted(p["metadata"]["labels"]["berth.dev/template-hash"] for p in warm)
        return len(warm) == 2 and sorted([old_hash, new_hash]) == hashes and all(map(ready, warm))

    poll(replaced, 60, "one stale and one current warm Pod")
    # A second claim prefers the current Pod over the stale one.
    current = next(
        p["metadata"]["name"]
        for p in warm_pods(kubectl, namespace, "or")
        if p["metadata"]["labels"]["berth.dev/template-hash"] == new_hash
    )
    apply(kubectl, namespace, claim("b", "or"))
    assert wait_claim(kubectl, namespace, "b")["status"]["podName"] == current


def test_not_ready_warm_pods_are_deleted_first_when_shrinking(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    # A Pod kwok never schedules (no node matches) stays not Ready: shrinking takes it first.
    apply(kubectl, namespace, pool("sh", replicas=2, max_size=6))
    wait_pool_ready(kubectl, namespace, "sh", 2)
    kubectl(
        "patch",
        POOL,
        "sh",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"replicas":3,"template":{"nodeSelector":{"nowhere":"true"}}}}',
    )
    poll(
        lambda: len(warm_pods(kubectl, namespace, "sh")) == 3,
        30,
        "a third (unschedulable) warm Pod",
    )
    ready_names = {p["metadata"]["name"] for p in warm_pods(kubectl, namespace, "sh") if ready(p)}
    assert len(ready_names) == 2
    kubectl("patch", POOL, "sh", "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":2}}')
    poll(
        lambda: {p["metadata"]["name"] for p in warm_pods(kubectl, namespace, "sh")} == ready_names,
        30,
        "the not-Ready Pod deleted, the Ready ones kept",
    )


def test_deleting_the_pool_deletes_its_warm_pods(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, pool("gone", replicas=3, max_size=5))
    wait_pool_ready(kubectl, namespace, "gone", 3)
    kubectl("delete", POOL, "gone", "-n", namespace, "--timeout=30s")
    poll(
        lambda: not live(pods(kubectl, namespace, "berth.dev/from-pool=gone")),
        60,
        "the warm Pods to go",
    )
    assert not kubectl("get", "secret", "gone-ca", "-n", namespace, "--ignore-not-found").stdout


BAD_SPECS = [
    ({"replicas": 5, "maxSize": 2}, "maxSize (warm plus claimed Pods) must be >= replicas"),
    (
        {
            "template": {
                "image": "x",
                "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            }
        },
        "secretKeyRef is not allowed in the sandbox",
    ),
    (
        {"template": {"image": "x", "volumes": [{"name": "s", "secret": {"secretName": "s"}}]}},
        "secret and projected volumes are not allowed in the sandbox",
    ),
    ({"lifecycle": {"idleTimeout": "ten minutes"}}, "must be a duration such as 90s"),
    (
        {
            "authProxy": {
                "rules": [
                    {
                        "name": "r",
                        "hosts": ["https://api.openai.com"],
                        "headers": [
                            {"name": "Authorization", "secretRef": {"name": "k", "key": "v"}}
                        ],
                    }
                ]
            }
        },
        "hosts must be lower-case DNS names",
    ),
]


@pytest.mark.parametrize(("patch", "message"), BAD_SPECS)
def test_bad_pool_specs_are_rejected_at_admission(
    sandbox_crds: None, kubectl: Kubectl, namespace: str, patch: dict[str, object], message: str
) -> None:
    body = pool("bad", replicas=1, max_size=2)
    body["spec"].update(patch)
    import yaml

    result = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body), check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_bad_claim_specs_are_rejected_at_admission(
    sandbox_crds: None, kubectl: Kubectl, namespace: str
) -> None:
    import yaml

    bad = claim("x", "p", threadId="not a label value!")
    result = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert result.returncode != 0 and "spec.threadId" in result.stderr, result.stderr
    ok = claim("keep", "p")
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(ok))
    result = kubectl(
        "patch",
        CLAIM,
        "keep",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"poolRef":{"name":"other"}}}',
        check=False,
    )
    assert result.returncode != 0 and "immutable" in result.stderr


def test_a_warm_pod_stuck_past_the_grace_period_is_replaced(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    # No node matches: the Pod stays Pending (not Ready) and is replaced after 10 s.
    stuck = {"image": "ghcr.io/berth-dev/sandbox-python:3.12", "nodeSelector": {"no": "where"}}
    apply(
        kubectl,
        namespace,
        pool("gr", replicas=1, max_size=2, readinessGracePeriodSeconds=10, template=stuck),
    )
    first = poll(lambda: warm_pods(kubectl, namespace, "gr"), 30, "a warm Pod")[0]["metadata"]
    poll(
        lambda: (
            {p["metadata"]["uid"] for p in warm_pods(kubectl, namespace, "gr")} - {first["uid"]}
        ),
        60,
        "a replacement for the stuck Pod",
    )
    assert first["uid"] not in {p["metadata"]["uid"] for p in warm_pods(kubectl, namespace, "gr")}
    body = get_json(kubectl, namespace, POOL, "gr")
    assert cond(body, "Ready")["status"] == "False"
    assert body["status"]["readyReplicas"] == 0


def test_allowed_services_are_read_into_the_network_policy(
    sandbox_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    """A missing Service says so in the pool's conditions; once it exists, the managed
    NetworkPolicy lets the sandboxes reach its Pods on its target port."""
    egress = {"allowServices": [{"name": "api"}]}
    apply(kubectl, namespace, pool("svc", replicas=1, max_size=2, authProxy={"egress": egress}))

    def reason_named() -> dict[str, Any] | None:
        body = get_json(kubectl, namespace, POOL, "svc")
        for c in (body.get("status") or {}).get("conditions") or ():
            if c.get("reason") == "ServiceNotFound":
                return dict(c)
        return None

    c = poll(reason_named, 60, "a ServiceNotFound condition")
    assert f"{namespace}/api" in c["message"], c
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"}, "ports": [{"port": 443, "targetPort": 8443}]},
    }
    apply(kubectl, namespace, service)
    wait_pool_ready(kubectl, namespace, "svc", 1)
    np = get_json(kubectl, namespace, "networkpolicy", "svc-sandbox")
    assert {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "podSelector": {"matchLabels": {"app": "api"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 8443}],
    } in np["spec"]["egress"]
