"""The managed NetworkPolicy of a pool's sandbox Pods (``networkPolicy.mode: Managed``).

Ingress: only the executor port, only from the runtime Pods (server and worker) of the
allowed AgentDeployments (the labels ``render.meta.pod_labels`` puts on them), plus
any extra peers the user lists. Egress: DNS to kube-dns, and TCP on the allowed ports
to the internet minus cloud metadata and cluster-internal ranges (unless allowed);
``allowCIDRs`` are added as their own blocks, so they win over the exclusions. When a
proxy rule names an ``oauthProvider``, egress also reaches the server Pods of the allowed
AgentDeployments on their ``http`` port: the proxy asks them for the thread user's token
(only the proxy: the egress redirection sends every other UID's TCP to the proxy, which
refuses cluster addresses).
``allowServices`` add the backing Pods of in-cluster Services (their selector, in their
namespace) on the Services' target ports: policies are evaluated after kube-proxy has
translated the Service address, so an ``ipBlock`` of the Service IP never matches.
The NetworkPolicy is the backstop: the proxy already filters by host, but UDP and
anything the iptables redirect does not catch stop here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from berth_operator.api.sandboxpool import SandboxPoolSpec
from berth_operator.render.meta import INSTANCE_LABEL, Subject
from berth_operator.render.sandbox.names import (
    EXECUTOR_PORT,
    FROM_POOL_LABEL,
    PoolNames,
    child_metadata,
)
from berth_operator.render.sandbox.proxy import (
    CLUSTER_CIDRS_V4,
    CLUSTER_CIDRS_V6,
    METADATA_CIDRS,
    allowed_ports,
    canonical_cidr,
)

DNS_PEER: dict[str, Any] = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
RUNTIME_COMPONENTS = ["server", "worker"]
RUNTIME_PORT_NAME = "http"
"""The runtime container's named port (render.runtime), behind the deployment's Service."""


@dataclass(frozen=True)
class ServiceBackends:
    """What a NetworkPolicy needs of an allowed Service: where its Pods are and their ports."""

    namespace: str
    selector: dict[str, str]
    ports: tuple[tuple[str, int | str], ...]  # (protocol, target port number or name)

    def peer_rule(self) -> dict[str, Any]:
        return {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": self.namespace}
                    },
                    "podSelector": {"matchLabels": dict(sorted(self.selector.items()))},
                }
            ],
            "ports": [{"protocol": proto, "port": port} for proto, port in self.ports],
        }


def service_backends(service: Mapping[str, Any]) -> ServiceBackends | str:
    """The backends of a live Service object, or why it cannot be allowed by selector."""
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    name = f"{meta.get('namespace')}/{meta.get('name')}"
    selector = spec.get("selector") or {}
    if spec.get("type") == "ExternalName" or not selector:
        return (
            f"Service {name} has no Pod selector (ExternalName or manual endpoints): allow its "
            "addresses with allowCIDRs instead"
        )
    ports: list[tuple[str, int | str]] = []
    for p in spec.get("ports") or ():
        target = p.get("targetPort", p.get("port"))
        entry = (str(p.get("protocol") or "TCP"), target)
        if entry not in ports:
            ports.append(entry)
    return ServiceBackends(str(meta.get("namespace")), dict(selector), tuple(ports))


def _excepts(spec: SandboxPoolSpec, family: int) -> list[str]:
    egress = spec.auth_proxy.egress
    out: list[str] = []
    if not egress.allow_metadata:
        out += [c for c in METADATA_CIDRS if ipaddress.ip_network(c).version == family]
    if not egress.allow_cluster_cidrs:
        out += list(CLUSTER_CIDRS_V4 if family == 4 else CLUSTER_CIDRS_V6)
    return _drop_covered(out)


def _drop_covered(cidrs: list[str]) -> list[str]:
    """Remove ranges inside another listed range (fd00:ec2::254/128 inside fc00::/7)."""
    nets = [ipaddress.ip_network(c) for c in cidrs]
    keep = []
    for i, n in enumerate(nets):
        inside = any(
            j != i and n.version == m.version and n != m and n.subnet_of(m)  # type: ignore[arg-type]
            for j, m in enumerate(nets)
        )
        if not inside:
            keep.append(str(n))
    return keep


def ingress_peers(spec: SandboxPoolSpec) -> list[dict[str, Any]]:
    """Who may reach the executor port: the allowed AgentDeployments' runtime Pods, but
    never another sandbox (sandbox Pods carry ``berth.dev/from-pool``)."""
    np = spec.network_policy
    peers: list[dict[str, Any]] = []
    if np.allowed_deployments:
        peers.append(
            {
                "podSelector": {
                    "matchExpressions": [
                        {
                            "key": INSTANCE_LABEL,
                            "operator": "In",
                            "values": sorted(set(np.allowed_deployments)),
                        },
                        {
                            "key": "app.kubernetes.io/component",
                            "operator": "In",
                            "values": RUNTIME_COMPONENTS,
                        },
                        {"key": FROM_POOL_LABEL, "operator": "DoesNotExist"},
                    ]
                }
            }
        )
    peers.extend(dict(p) for p in np.ingress_from or ())
    return peers


def egress_rules(
    spec: SandboxPoolSpec, services: Sequence[ServiceBackends] = ()
) -> list[dict[str, Any]]:
    ports = [{"protocol": "TCP", "port": p} for p in allowed_ports(spec.auth_proxy.egress)]
    dns = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    blocks: list[dict[str, Any]] = []
    for family, everything in ((4, "0.0.0.0/0"), (6, "::/0")):
        block: dict[str, Any] = {"cidr": everything}
        excepts = _excepts(spec, family)
        if excepts:
            block["except"] = excepts
        blocks.append({"ipBlock": block})
    rules: list[dict[str, Any]] = [
        {"to": [DNS_PEER], "ports": dns},
        {"to": blocks, "ports": ports},
    ]
    extra = [canonical_cidr(c) for c in spec.auth_proxy.egress.allow_cidrs or ()]
    if extra:
        rules.append({"to": [{"ipBlock": {"cidr": c}} for c in sorted(set(extra))], "ports": ports})
    rules.extend(b.peer_rule() for b in services)
    deployments = sorted(set(spec.network_policy.allowed_deployments or ()))
    if spec.uses_agent_auth and deployments:
        rules.append(
            {
                "to": [
                    {
                        "podSelector": {
                            "matchExpressions": [
                                {"key": INSTANCE_LABEL, "operator": "In", "values": deployments},
                                {
                                    "key": "app.kubernetes.io/component",
                                    "operator": "In",
                                    "values": ["server"],
                                },
                                {"key": FROM_POOL_LABEL, "operator": "DoesNotExist"},
                            ]
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": RUNTIME_PORT_NAME}],
            }
        )
    return rules


def network_policy(
    pool: Subject, spec: SandboxPoolSpec, services: Sequence[ServiceBackends] = ()
) -> dict[str, Any] | None:
    """NetworkPolicy ``<pool>-sandbox`` over every Pod of the pool; None when Unmanaged.

    services: the backends of ``egress.allowServices``, read from the cluster by the caller.
    """
    if spec.network_policy.mode != "Managed":
        return None
    peers = ingress_peers(spec)
    ingress: list[dict[str, Any]] = []
    if peers:
        ingress.append(
            {"from": peers, "ports": [{"protocol": "TCP", "port": EXECUTOR_PORT}]},
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(
            pool, PoolNames(pool.name).network_policy, labels={FROM_POOL_LABEL: pool.name}
        ),
        "spec": {
            "podSelector": {"matchLabels": {FROM_POOL_LABEL: pool.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress_rules(spec, services),
        },
    }
