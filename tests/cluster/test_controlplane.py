"""The cluster tier runs against a real control plane, not a mock: the API
server validates schemas and CEL rules, the scheduler and kwok make Pods Ready,
and the garbage collector follows owner references."""

from __future__ import annotations

import json
import time
from typing import Any

import kubernetes
import pytest

from tests.cluster.conftest import Kubectl

pytestmark = pytest.mark.cluster

GROUP = "cptest.berth.dev"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1},
                                    "min": {"type": "integer", "default": 0},
                                    "max": {"type": "integer", "default": 10},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.min <= self.max",
                                        "message": "min must not exceed max",
                                    }
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def _widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


@pytest.fixture(scope="module")
def widget_crd(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(WIDGET_CRD))
    kubectl("wait", "--for=condition=Established", f"crd/widgets.{GROUP}", "--timeout=30s")


def test_structural_crd_is_accepted_and_serves_resources(
    widget_crd: None, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_widget("ok", {"size": 3})))
    got = json.loads(kubectl("get", "widget", "ok", "-n", namespace, "-o", "json").stdout)
    # Schema defaults are applied by the API server.
    assert got["spec"] == {"size": 3, "min": 0, "max": 10}


def test_schema_violation_is_rejected_with_422(
    widget_crd: None, api_client: kubernetes.client.ApiClient, namespace: str
) -> None:
    api = kubernetes.client.CustomObjectsApi(api_client)
    with pytest.raises(kubernetes.client.ApiException) as err:
        api.create_namespaced_custom_object(
            GROUP, "v1", namespace, "widgets", _widget("bad", {"size": 0})
        )
    assert err.value.status == 422
    assert "spec.size" in err.value.body


def test_cel_rule_violation_is_rejected(
    widget_crd: None, api_client: kubernetes.client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    api = kubernetes.client.CustomObjectsApi(api_client)
    with pytest.raises(kubernetes.client.ApiException) as err:
        api.create_namespaced_custom_object(
            GROUP, "v1", namespace, "widgets", _widget("cel", {"size": 1, "min": 5, "max": 2})
        )
    assert err.value.status == 422
    assert "min must not exceed max" in err.value.body
    # kubectl shows the same rejection to a user.
    result = kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(_widget("cel", {"size": 1, "min": 5, "max": 2})),
        check=False,
    )
    assert result.returncode != 0 and "min must not exceed max" in result.stderr


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "registry.invalid/none:1"}]},
            },
        },
    }


def test_deployment_pods_become_ready_through_kwok(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_deployment("web", 3)))
    kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=60s")
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json").stdout)
    assert len(pods["items"]) == 3
    for pod in pods["items"]:
        assert pod["spec"]["nodeName"].startswith("kwok-node-")  # placed by the real scheduler
        assert pod["status"]["phase"] == "Running"
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True"


def test_statefulset_pods_become_ready(kubectl: Kubectl, namespace: str) -> None:
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db",
            "replicas": 2,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [
                        {
                            "name": "db",
                            "image": "postgres:16",
                            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql"}],
                        }
                    ]
                },
            },
            # PVCs are provisioned by the default StorageClass (host-path provisioner).
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(sts))
    kubectl("rollout", "status", "-n", namespace, "statefulset/db", "--timeout=60s")
    got = json.loads(kubectl("get", "statefulset", "db", "-n", namespace, "-o", "json").stdout)
    assert got["status"]["readyReplicas"] == 2
    pvcs = json.loads(kubectl("get", "pvc", "-n", namespace, "-o", "json").stdout)["items"]
    assert sorted(p["metadata"]["name"] for p in pvcs) == ["data-db-0", "data-db-1"]
    assert all(p["status"]["phase"] == "Bound" for p in pvcs)


def test_deleting_an_owner_garbage_collects_dependents(kubectl: Kubectl, namespace: str) -> None:
    owner = json.loads(
        kubectl(
            "create", "configmap", "owner", "-n", namespace, "--from-literal=a=b", "-o", "json"
        ).stdout
    )
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner["metadata"]["uid"],
                }
            ],
        },
        "data": {"x": "y"},
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(dependent))
    kubectl("delete", "configmap", "owner", "-n", namespace)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if kubectl("get", "configmap", "dependent", "-n", namespace, check=False).returncode != 0:
            return
        time.sleep(0.25)
    pytest.fail("the garbage collector did not delete the dependent ConfigMap")


def test_kubectl_wait_available_on_deployment(kubectl: Kubectl, namespace: str) -> None:
    kubectl(
        "create",
        "deployment",
        "api",
        "-n",
        namespace,
        "--image=registry.invalid/api:1",
        "--replicas=2",
    )
    result = kubectl(
        "wait", "-n", namespace, "--for=condition=Available", "deployment/api", "--timeout=60s"
    )
    assert "condition met" in result.stdout
