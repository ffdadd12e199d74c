"""The managed NetworkPolicy: ingress from the allowed AgentDeployments' runtime Pods only,
egress DNS plus the internet minus metadata and cluster ranges, opt-ins honoured."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from berth_operator.render.meta import Subject, pod_labels
from berth_operator.render.sandbox.netpol import (
    ServiceBackends,
    network_policy,
    service_backends,
)
from berth_operator.render.sandbox.pod import template_hash, warm_pod

from tests.unit.operator.sandbox_factories import IMAGES, pool_spec, pool_subject


def _policy(**fields: Any) -> dict[str, Any]:
    np = network_policy(pool_subject(), pool_spec(**fields))
    assert np is not None
    return np


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Label selector semantics (matchLabels and the In/DoesNotExist expressions used)."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", ()):
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
        if e["operator"] == "DoesNotExist" and e["key"] in labels:
            return False
    return True


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"networkPolicy": {"allowedDeployments": ["agent", "other"]}},
        {
            "networkPolicy": {
                "allowedDeployments": ["agent"],
                "ingressFrom": [{"podSelector": {"matchLabels": {"role": "bench"}}}],
            },
            "authProxy": {
                "egress": {
                    "allowCIDRs": ["10.1.0.0/16", "2001:db8::/32"],
                    "allowPorts": [22],
                    "allowMetadata": True,
                    "allowClusterCIDRs": True,
                }
            },
        },
    ],
)
def test_valid_network_policy(fields: dict[str, Any]) -> None:
    kubernetes_validate.validate(_policy(**fields), "1.36", strict=True)


def test_unmanaged_renders_nothing() -> None:
    assert network_policy(pool_subject(), pool_spec(networkPolicy={"mode": "Unmanaged"})) is None


def test_selects_every_pod_of_the_pool() -> None:
    np = _policy()
    assert np["metadata"]["name"] == "py-sandbox"
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    pod = warm_pod(pool_subject(), pool_spec(), "py-a", images=IMAGES)
    assert _matches(np["spec"]["podSelector"], pod["metadata"]["labels"])


def test_ingress_only_from_allowed_runtime_pods_to_the_executor() -> None:
    np = _policy(networkPolicy={"allowedDeployments": ["agent"]})
    (rule,) = np["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8790}]
    (peer,) = rule["from"]
    assert "namespaceSelector" not in peer  # same namespace only
    sel = peer["podSelector"]
    for component in ("server", "worker"):
        runtime = pod_labels(Subject(name="agent", namespace="ns1", uid="u"), component)
        assert _matches(sel, runtime), component
    other = pod_labels(Subject(name="other", namespace="ns1", uid="u"), "server")
    assert not _matches(sel, other)
    postgres = pod_labels(Subject(name="agent", namespace="ns1", uid="u"), "postgres")
    assert not _matches(sel, postgres)
    # A sandbox Pod dressed up as the agent is still refused.
    sandbox = {**warm_pod(pool_subject(), pool_spec(), "p", images=IMAGES)["metadata"]["labels"]}
    sandbox.update(pod_labels(Subject(name="agent", namespace="ns1", uid="u"), "server"))
    assert not _matches(sel, sandbox)


def test_no_allowed_deployments_means_no_ingress() -> None:
    assert _policy()["spec"]["ingress"] == []


def test_egress_dns_and_internet_minus_metadata_and_cluster() -> None:
    dns, internet = _policy()["spec"]["egress"]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    (peer,) = dns["to"]
    assert peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert peer["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
    }
    v4, v6 = (t["ipBlock"] for t in internet["to"])
    assert v4["cidr"] == "0.0.0.0/0"
    assert set(v4["except"]) == {
        "169.254.169.254/32",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    }
    assert v6 == {"cidr": "::/0", "except": ["fc00::/7"]}
    assert internet["ports"] == [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443}]


def test_egress_opt_ins() -> None:
    np = _policy(
        authProxy={
            "egress": {"allowCIDRs": ["10.1.2.3/16"], "allowPorts": [5432], "allowMetadata": True}
        }
    )
    _, internet, extra = np["spec"]["egress"]
    v4 = internet["to"][0]["ipBlock"]
    assert "169.254.169.254/32" not in v4["except"] and "10.0.0.0/8" in v4["except"]
    assert extra == {
        "to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": 5432}],
    }
    open_all = _policy(authProxy={"egress": {"allowMetadata": True, "allowClusterCIDRs": True}})
    blocks = [t["ipBlock"] for t in open_all["spec"]["egress"][1]["to"]]
    assert blocks == [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]
    cluster_only = _policy(authProxy={"egress": {"allowClusterCIDRs": True}})
    v4, v6 = (t["ipBlock"] for t in cluster_only["spec"]["egress"][1]["to"])
    assert v4["except"] == ["169.254.169.254/32"]
    assert v6["except"] == ["fd00:ec2::254/128"]


def _service(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "api", "namespace": "upstream"}, "spec": spec}


def test_allowed_services_reach_their_backing_pods_on_target_ports() -> None:
    """Policies see the translated address: the Service's Pods and target ports, not its IP."""
    backends = service_backends(
        _service(
            selector={"app": "api", "tier": "a"},
            ports=[
                {"port": 443, "targetPort": 8443, "protocol": "TCP"},
                {"port": 80, "targetPort": "http"},
                {"port": 8080},
            ],
        )
    )
    assert isinstance(backends, ServiceBackends)
    spec = pool_spec(authProxy={"egress": {"allowServices": [{"name": "api", "namespace": "x"}]}})
    np = network_policy(pool_subject(), spec, [backends])
    assert np is not None
    kubernetes_validate.validate(np, "1.36", strict=True)
    rule = np["spec"]["egress"][-1]
    assert rule == {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "upstream"}},
                "podSelector": {"matchLabels": {"app": "api", "tier": "a"}},
            }
        ],
        "ports": [
            {"protocol": "TCP", "port": 8443},
            {"protocol": "TCP", "port": "http"},
            {"protocol": "TCP", "port": 8080},
        ],
    }
    # Without the backends (the default) nothing beyond the base rules is rendered.
    assert len(_policy()["spec"]["egress"]) == len(np["spec"]["egress"]) - 1


@pytest.mark.parametrize(
    "service",
    [_service(type="ExternalName", externalName="db.example"), _service(ports=[{"port": 5432}])],
)
def test_a_service_without_selector_cannot_be_allowed_by_selector(service: Any) -> None:
    problem = service_backends(service)
    assert isinstance(problem, str)
    assert "upstream/api" in problem and "allowCIDRs" in problem


def test_allow_services_does_not_roll_the_pods() -> None:
    """The Pods do not depend on allowServices (the NetworkPolicy does)."""
    plain = template_hash(pool_spec(), IMAGES)
    spec = pool_spec(authProxy={"egress": {"allowServices": [{"name": "api"}]}})
    assert template_hash(spec, IMAGES) == plain
    ports = pool_spec(authProxy={"egress": {"allowServices": [{"name": "api"}], "allowPorts": [1]}})
    assert template_hash(ports, IMAGES) != plain
