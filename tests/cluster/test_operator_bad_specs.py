"""Bad AgentDeployments: refused by the API server (schema, CEL), or Stalled with a reason
and no partial damage when only the cluster can tell (missing Secret, invalid child)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    AGD,
    OperatorProcess,
    agent,
    apply,
    berth_crds,
    condition,
    exists,
    external_secrets,
    get,
    operator,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds", "operator"]

REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("empty-image", {"image": ""}, "should be at least 1 chars long"),
    ("empty-graphs", {"graphs": {"inline": {"graphs": {}}}}, "should have at least 1 properties"),
    (
        "both-graph-sources",
        {"graphs": {"inline": {"graphs": {"a": "x"}}, "configMapRef": {"name": "c"}}},
        "set exactly one of graphs.inline or graphs.configMapRef",
    ),
    (
        "bundled-and-external",
        {"postgres": {"bundled": {}, "external": {"secretName": "pg"}}},
        "set exactly one of postgres.bundled or postgres.external",
    ),
    (
        "min-over-max",
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 2, "targetCPUUtilizationPercentage": 50}},
        "autoscaling.minReplicas must be <= autoscaling.maxReplicas",
    ),
    (
        "no-metric",
        {"autoscaling": {"maxReplicas": 2}},
        "autoscaling needs targetCPUUtilizationPercentage or queueDepth",
    ),
    (
        "workers-hpa-without-workers",
        {"autoscaling": {"target": "Workers", "maxReplicas": 2, "queueDepth": {}}},
        "autoscaling.target Workers needs workers.enabled",
    ),
    (
        "reserved-env",
        {"env": [{"name": "REDIS_URI", "value": "redis://x"}]},
        "env must not set DATABASE_URI, REDIS_URI",
    ),
    ("bad-quantity", {"server": {"resources": {"limits": {"cpu": "lots"}}}}, "should match"),
    ("bad-enum", {"service": {"type": "Magic"}}, 'Unsupported value: "Magic"'),
    ("negative-replicas", {"server": {"replicas": -1}}, "should be greater than or equal to 0"),
]


@pytest.mark.parametrize(("case", "spec", "message"), REJECTED, ids=[c[0] for c in REJECTED])
def test_api_server_rejects_invalid_specs(
    berth_crds: None,
    kubectl: Kubectl,
    namespace: str,
    case: str,
    spec: dict[str, Any],
    message: str,
) -> None:
    body = agent("bad", **spec)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    result = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body), check=False)
    assert result.returncode != 0, f"{case} was accepted"
    assert message in result.stderr, result.stderr
    assert not exists(kubectl, namespace, AGD, "bad")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 41, "metadata.name must be at most 40 characters"),
        ("9lives", "metadata.name must be a DNS-1035 label"),
    ],
)
def test_api_server_rejects_names_children_cannot_carry(
    berth_crds: None, kubectl: Kubectl, namespace: str, name: str, message: str
) -> None:
    body = agent(name)
    result = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body), check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def _stalled(kubectl: Kubectl, ns: str, name: str, reason: str) -> dict[str, Any]:
    def check() -> bool:
        body = get(kubectl, ns, AGD, name)
        st = condition(body, "Stalled")
        return (
            st.get("status") == "True"
            and st.get("reason") == reason
            and st.get("observedGeneration") == body["metadata"]["generation"]
        )

    wait_until(check, 30, f"{name} Stalled/{reason}")
    return get(kubectl, ns, AGD, name)


def _children(kubectl: Kubectl, ns: str, name: str) -> list[str]:
    out = kubectl(
        "get",
        "deployments,statefulsets,services,configmaps,secrets,serviceaccounts,pdb",
        "-n",
        ns,
        "-l",
        f"berth.dev/agentdeployment={name}",
        "-o",
        "name",
    ).stdout
    return out.split()


def test_missing_references_stall_without_creating_anything(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, agent("nosecret"))
    body = _stalled(kubectl, namespace, "nosecret", "SecretNotFound")
    assert condition(body, "Ready")["status"] == "False"
    assert condition(body, "DatabaseReady")["reason"] == "SecretNotFound"
    assert "'pg' not found" in condition(body, "Stalled")["message"]
    assert _children(kubectl, namespace, "nosecret") == []

    def warned() -> bool:
        out = kubectl(
            "get",
            "events",
            "-n",
            namespace,
            "-o",
            "json",
            "--field-selector",
            "involvedObject.name=nosecret,type=Warning",
        ).stdout
        return any(e["reason"] == "SecretNotFound" for e in json.loads(out)["items"])

    wait_until(warned, 15, "a Warning event on the Stalled AgentDeployment")

    apply(
        kubectl,
        namespace,
        agent("nocm", graphs={"configMapRef": {"name": "graphs"}}),
    )
    external_secrets(kubectl, namespace)
    _stalled(kubectl, namespace, "nocm", "ConfigMapNotFound")
    assert _children(kubectl, namespace, "nocm") == []

    # Fixing the cause heals both without touching the AgentDeployments (periodic resync).
    apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "graphs"},
            "data": {"langgraph.json": json.dumps({"graphs": {"agent": "/app/agent.py:graph"}})},
        },
    )
    wait_ready(kubectl, namespace, "nosecret")
    wait_ready(kubectl, namespace, "nocm")


def test_invalid_update_stalls_and_leaves_running_children_untouched(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    external_secrets(kubectl, namespace)
    apply(kubectl, namespace, agent("live"))
    wait_ready(kubectl, namespace, "live")
    before = {
        n: get(kubectl, namespace, *n.split("/"))["metadata"]["resourceVersion"]
        for n in _children(kubectl, namespace, "live")
    }

    # Passes the CRD schema (securityContext is passed through) but no Pod may have it.
    bad = {"spec": {"image": "v2", "pod": {"securityContext": {"runAsUser": -5}}}}
    kubectl("patch", AGD, "live", "-n", namespace, "--type=merge", "-p", json.dumps(bad))
    body = _stalled(kubectl, namespace, "live", "ApplyRejected")
    assert "runAsUser" in condition(body, "Stalled")["message"]
    after = {
        n: get(kubectl, namespace, *n.split("/"))["metadata"]["resourceVersion"]
        for n in _children(kubectl, namespace, "live")
    }
    assert after == before  # all or nothing: not even the ConfigMap or Service changed
    image = get(kubectl, namespace, "deployment", "live-server")["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    assert image == "ghcr.io/berth-dev/berth-runtime:dev"

    fix = {"spec": {"pod": None}}
    kubectl("patch", AGD, "live", "-n", namespace, "--type=merge", "-p", json.dumps(fix))
    wait_ready(kubectl, namespace, "live")
    image = get(kubectl, namespace, "deployment", "live-server")["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    assert image == "v2"


def test_existing_foreign_objects_are_not_taken_over(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    external_secrets(kubectl, namespace)
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "taken-config", "labels": {"owner": "someone-else"}},
        "data": {"keep": "me"},
    }
    apply(kubectl, namespace, foreign)
    apply(kubectl, namespace, agent("taken"))
    body = _stalled(kubectl, namespace, "taken", "AdoptionConflict")
    assert "not managed by Berth" in condition(body, "Stalled")["message"]
    assert get(kubectl, namespace, "configmap", "taken-config")["data"] == {"keep": "me"}
    assert _children(kubectl, namespace, "taken") == []

    kubectl("delete", "configmap", "taken-config", "-n", namespace)
    wait_ready(kubectl, namespace, "taken")
