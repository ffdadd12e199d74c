"""AgentDeployment end to end on a real control plane: create, roll, repair, scale, delete.

The operator runs as a subprocess (`berth-operator run --namespace <ns>`); kwok makes
the Pods Ready, the garbage collector follows owner references.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import kubernetes
import pytest

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    AGD,
    OperatorProcess,
    agent,
    apply,
    berth_crds,
    condition,
    delete_all_agentdeployments,
    exists,
    external_secrets,
    get,
    operator,
    resource_versions,
    start_operator,
    volumes,
    wait_ready,
    wait_until,
)
from tests.support.servers import free_port

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds", "operator", "volumes"]


def server_deployment(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    return get(kubectl, ns, "deployment", f"{name}-server")


def test_create_becomes_ready_with_owned_children(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    external_secrets(kubectl, namespace)
    apply(kubectl, namespace, agent("web", workers={"enabled": True, "replicas": 2}))
    wait_ready(kubectl, namespace, "web")

    body = get(kubectl, namespace, AGD, "web")
    st = body["status"]
    assert st["observedGeneration"] == body["metadata"]["generation"]
    assert st["endpoint"] == f"http://web.{namespace}.svc.cluster.local:8000"
    assert st["selector"] == "berth.dev/agentdeployment=web,app.kubernetes.io/component=server"
    assert st["workers"] == {"replicas": 2, "readyReplicas": 2}
    assert {c["type"] for c in st["conditions"]} >= {
        "Ready",
        "Reconciling",
        "Stalled",
        "DatabaseReady",
        "RedisReady",
        "ServerReady",
    }
    assert condition(body, "Stalled")["status"] == "False"
    assert condition(body, "Reconciling")["status"] == "False"

    uid = body["metadata"]["uid"]
    for kind, name in [
        ("deployment", "web-server"),
        ("deployment", "web-worker"),
        ("service", "web"),
        ("configmap", "web-config"),
        ("serviceaccount", "web"),
        ("poddisruptionbudget", "web-server"),
    ]:
        child = get(kubectl, namespace, kind, name)
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid, (kind, name)
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "berth-operator"
    server = server_deployment(kubectl, namespace, "web")
    c = server["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["api", "--config", "/app/config/langgraph.json"]
    env = {e["name"]: e for e in c["env"]}
    assert env["DATABASE_URI"]["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "uri"}

    table = kubectl("get", AGD, "web", "-n", namespace).stdout
    header, row = table.strip().splitlines()
    assert header.split()[:4] == ["NAME", "READY", "REASON", "ENDPOINT"]
    assert row.split()[1:4] == ["True", "Available", st["endpoint"]]


def test_scale_subresource_drives_server_replicas(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    external_secrets(kubectl, namespace)
    apply(kubectl, namespace, agent("sc"))
    wait_ready(kubectl, namespace, "sc")
    kubectl("scale", f"{AGD}/sc", "-n", namespace, "--replicas=3")
    wait_ready(kubectl, namespace, "sc")
    assert server_deployment(kubectl, namespace, "sc")["spec"]["replicas"] == 3
    scale = json.loads(
        kubectl(
            "get",
            "--raw",
            f"/apis/berth.dev/v1alpha1/namespaces/{namespace}/agentdeployments/sc/scale",
        ).stdout
    )
    assert scale["status"]["replicas"] == 3
    assert (
        scale["status"]["selector"]
        == "berth.dev/agentdeployment=sc,app.kubernetes.io/component=server"
    )


def test_autoscaling_renders_an_hpa_and_leaves_replicas_to_it(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    external_secrets(kubectl, namespace)
    spec = {
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 70}
    }
    apply(kubectl, namespace, agent("hp", **spec))
    wait_until(lambda: exists(kubectl, namespace, "hpa", "hp"), 30, "the HPA")
    hpa = get(kubectl, namespace, "hpa", "hp")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "hp-server"
    raw = kubectl(
        "get", "deployment", "hp-server", "-n", namespace, "-o", "json", "--show-managed-fields"
    ).stdout
    managed = json.loads(raw)["metadata"]["managedFields"]
    ours = [m for m in managed if m["manager"] == "berth-operator" and m["operation"] == "Apply"]
    assert ours and "f:replicas" not in json.dumps(ours[0]["fieldsV1"]["f:spec"])


def test_spec_change_rolls_pods_and_flips_ready_until_reconciled(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    api_client: kubernetes.client.ApiClient,
) -> None:
    external_secrets(kubectl, namespace)
    apply(kubectl, namespace, agent("roll", server={"replicas": 2}))
    wait_ready(kubectl, namespace, "roll")
    before = server_deployment(kubectl, namespace, "roll")
    old_hash = before["spec"]["template"]["metadata"]["annotations"]["berth.dev/config-hash"]
    rv = get(kubectl, namespace, AGD, "roll")["metadata"]["resourceVersion"]

    seen: list[tuple[int, str, str]] = []
    done = threading.Event()

    def watch() -> None:
        api = kubernetes.client.CustomObjectsApi(api_client)
        w = kubernetes.watch.Watch()
        for event in w.stream(
            api.list_namespaced_custom_object,
            "berth.dev",
            "v1alpha1",
            namespace,
            "agentdeployments",
            field_selector="metadata.name=roll",
            resource_version=rv,
            timeout_seconds=60,
        ):
            obj = event["object"]
            ready = condition(obj, "Ready")
            seen.append(
                (
                    ready.get("observedGeneration", 0),
                    ready.get("status", ""),
                    ready.get("reason", ""),
                )
            )
            if (
                obj["metadata"]["generation"] == 2
                and ready.get("observedGeneration") == 2
                and ready.get("status") == "True"
            ):
                w.stop()
        done.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    new_graphs = {
        "inline": {"graphs": {"agent": "/app/agent.py:graph", "other": "/app/other.py:g"}}
    }
    kubectl(
        "patch",
        AGD,
        "roll",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"graphs": new_graphs}}),
    )
    wait_ready(kubectl, namespace, "roll")
    assert done.wait(30), seen

    gen2 = [s for s in seen if s[0] == 2]
    assert gen2[0][1] == "False", seen  # Ready flipped back for the new generation ...
    assert gen2[-1][1] == "True", seen  # ... until the rollout finished
    after = server_deployment(kubectl, namespace, "roll")
    assert after["spec"]["template"]["metadata"]["annotations"]["berth.dev/config-hash"] != old_hash
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    cm = get(kubectl, namespace, "configmap", "roll-config")
    assert "other" in json.loads(cm["data"]["langgraph.json"])["graphs"]


def test_drift_is_repaired(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    external_secrets(kubectl, namespace)
    apply(kubectl, namespace, agent("drift"))
    wait_ready(kubectl, namespace, "drift")
    old_uid = server_deployment(kubectl, namespace, "drift")["metadata"]["uid"]

    kubectl("delete", "deployment", "drift-server", "-n", namespace)
    wait_until(
        lambda: (
            exists(kubectl, namespace, "deployment", "drift-server")
            and server_deployment(kubectl, namespace, "drift")["metadata"]["uid"] != old_uid
        ),
        30,
        "the deleted Deployment to come back",
    )

    kubectl("set", "image", "deployment/drift-server", "runtime=evil:latest", "-n", namespace)
    wait_until(
        lambda: (
            server_deployment(kubectl, namespace, "drift")["spec"]["template"]["spec"][
                "containers"
            ][0]["image"]
            == "ghcr.io/berth-dev/berth-runtime:dev"
        ),
        30,
        "the edited image to be restored",
    )

    patch = {"spec": {"ports": [{"name": "http", "port": 9999, "targetPort": "http"}]}}
    kubectl("patch", "service", "drift", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    wait_until(
        lambda: (
            [p["port"] for p in get(kubectl, namespace, "service", "drift")["spec"]["ports"]]
            == [8000]
        ),
        30,
        "the edited Service port to be restored",
    )

    kubectl("delete", "poddisruptionbudget", "drift-server", "-n", namespace)  # not watched: resync
    wait_until(
        lambda: exists(kubectl, namespace, "pdb", "drift-server"), 30, "the PDB to come back"
    )
    wait_ready(kubectl, namespace, "drift")


def test_noop_reconcile_writes_nothing(
    kubectl: Kubectl, namespace: str, kube_env: dict[str, str], berth_crds: None
) -> None:
    external_secrets(kubectl, namespace)

    def writes(op: OperatorProcess) -> int:
        return sum(op.count(w) for w in ("apply ", "replace ", "patch status", "delete "))

    op = start_operator(kube_env, namespace)
    try:
        apply(kubectl, namespace, agent("calm", workers={"enabled": True}))
        wait_ready(kubectl, namespace, "calm")
        time.sleep(4)  # the last child events and one resync pass settle
        before, count = resource_versions(kubectl, namespace), writes(op)
        time.sleep(8)  # >= 2 resync passes (every 3 s), plus any child-event passes
        assert resource_versions(kubectl, namespace) == before
        assert writes(op) == count, op.log()
    finally:
        op.stop()
    restarted = start_operator(kube_env, namespace)  # the resume path must not write either
    try:
        time.sleep(6)
        assert resource_versions(kubectl, namespace) == before
        assert writes(restarted) == 0, restarted.log()
    finally:
        delete_all_agentdeployments(kubectl, namespace)
        restarted.stop()


def test_delete_removes_children_and_keeps_the_database_volume(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, volumes: Callable[[str], str]
) -> None:
    volumes("kept-postgres-data")
    volumes("gone-postgres-data")
    apply(
        kubectl,
        namespace,
        agent("kept", external=False),
        agent("gone", external=False, postgres={"bundled": {"storage": {"keepOnDelete": False}}}),
    )
    wait_ready(kubectl, namespace, "kept", timeout=90)
    wait_ready(kubectl, namespace, "gone", timeout=90)
    body = get(kubectl, namespace, AGD, "kept")
    assert condition(body, "DatabaseReady")["reason"] == "Available"
    secret_before = get(kubectl, namespace, "secret", "kept-credentials")["data"]

    kubectl("delete", AGD, "kept", "gone", "-n", namespace, "--timeout=30s")
    for name in ("kept", "gone"):
        wait_until(
            lambda name=name: (
                not exists(kubectl, namespace, "deployment", f"{name}-server")
                and not exists(kubectl, namespace, "statefulset", f"{name}-postgres")
            ),
            60,
            f"{name}'s children to be garbage-collected",
        )
    assert exists(kubectl, namespace, "pvc", "kept-postgres-data")
    assert exists(kubectl, namespace, "secret", "kept-credentials")
    wait_until(
        lambda: not exists(kubectl, namespace, "pvc", "gone-postgres-data"), 60, "owned PVC gone"
    )
    assert not exists(kubectl, namespace, "secret", "gone-credentials")

    # Re-creating it reuses the kept volume and the same password (never rotated).
    apply(kubectl, namespace, agent("kept", external=False))
    wait_ready(kubectl, namespace, "kept", timeout=90)
    assert get(kubectl, namespace, "secret", "kept-credentials")["data"] == secret_before


def test_liveness_endpoint_reports_health_and_counters(
    kubectl: Kubectl, namespace: str, kube_env: dict[str, str], berth_crds: None
) -> None:
    port = free_port()
    op = start_operator(kube_env, namespace, "--liveness", f"http://127.0.0.1:{port}/healthz")
    try:
        external_secrets(kubectl, namespace)
        apply(kubectl, namespace, agent("live"))
        wait_ready(kubectl, namespace, "live")
        time.sleep(10.5)  # kopf caches probe results for 10 s
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert response.status_code == 200
        stats = response.json()["stats"]
        assert stats["reconcilePasses"] >= 1 and stats["writes"] >= 5
    finally:
        delete_all_agentdeployments(kubectl, namespace)
        op.stop()


def test_children_no_longer_wanted_are_removed(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    external_secrets(kubectl, namespace)
    scaled = {"target": "Workers", "maxReplicas": 3, "queueDepth": {}}
    apply(kubectl, namespace, agent("shrink", workers={"enabled": True}, autoscaling=scaled))
    wait_ready(kubectl, namespace, "shrink")
    for kind, name in [
        ("deployment", "shrink-worker"),
        ("pdb", "shrink-worker"),
        ("hpa", "shrink"),
    ]:
        assert exists(kubectl, namespace, kind, name)

    patch = {"spec": {"workers": {"enabled": False}, "autoscaling": None}}
    kubectl("patch", AGD, "shrink", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    wait_ready(kubectl, namespace, "shrink")
    for kind, name in [
        ("deployment", "shrink-worker"),
        ("pdb", "shrink-worker"),
        ("hpa", "shrink"),
    ]:
        assert not exists(kubectl, namespace, kind, name), (kind, name)
    args = server_deployment(kubectl, namespace, "shrink")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert args[0] == "serve"
    assert "workers" not in get(kubectl, namespace, AGD, "shrink")["status"]


def test_rapid_updates_converge_on_the_last_generation(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    external_secrets(kubectl, namespace)
    apply(kubectl, namespace, agent("rapid"))
    for i in range(5):
        patch = {"spec": {"image": f"berth-runtime:v{i}", "server": {"replicas": 1 + i % 2}}}
        kubectl("patch", AGD, "rapid", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    wait_ready(kubectl, namespace, "rapid")
    body = get(kubectl, namespace, AGD, "rapid")
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"] == 6
    server = server_deployment(kubectl, namespace, "rapid")
    assert server["spec"]["template"]["spec"]["containers"][0]["image"] == "berth-runtime:v4"
    assert server["spec"]["replicas"] == 1
