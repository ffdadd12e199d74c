"""The auth-proxy's ``config.json`` and the Secret mounts it needs, from ``spec.authProxy``.

The format is the sandbox contract's (auth_proxy/ reads it). Secrets never appear
in the config: a header names a file under ``/berth/secrets/<secret>/<key>``,
mounted into the proxy container only, or an Agent Auth provider (``oauthProvider``),
whose thread user's token the proxy fetches with the files of the ``agentAuth`` block
(see ``agent_auth``).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from berth_operator.api.sandboxpool import (
    AuthProxySpec,
    EgressSpec,
    HeaderInjection,
    SandboxPoolSpec,
)
from berth_operator.render.meta import Subject, digest
from berth_operator.render.sandbox import agent_auth
from berth_operator.render.sandbox.names import (
    FROM_POOL_LABEL,
    PROXY_ADMIN_PORT,
    PROXY_PORT,
    PoolNames,
    child_metadata,
)

CONFIG_KEY = "config.json"
CONFIG_DIR = "/berth/proxy"
CA_KEY_DIR = "/berth/ca-key"
SECRETS_DIR = "/berth/secrets"
UPSTREAM_CA_DIR = "/berth/upstream-ca"
UPSTREAM_CA_FILE = "ca.crt"
DEFAULT_PORTS = (443, 80)

METADATA_CIDRS = ("169.254.169.254/32", "fd00:ec2::254/128")
"""Cloud metadata endpoints (GCE/AWS/Azure IPv4; AWS IPv6)."""
CLUSTER_CIDRS_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
CLUSTER_CIDRS_V6 = ("fc00::/7",)
CLUSTER_CIDRS = CLUSTER_CIDRS_V4 + CLUSTER_CIDRS_V6
"""Private and carrier-grade NAT ranges where Pod, Service and node addresses live."""
ALWAYS_DENIED = ("127.0.0.0/8", "::1/128", "0.0.0.0/8")
"""Loopback would reach the Pod's own executor and proxy admin port: never allowed."""


@dataclass(frozen=True)
class SecretMount:
    """One rule Secret as a read-only volume in the proxy container."""

    secret: str
    volume: str
    keys: tuple[str, ...]

    @property
    def mount_path(self) -> str:
        return f"{SECRETS_DIR}/{self.secret}"

    def file(self, key: str) -> str:
        return f"{self.mount_path}/{key}"


def secret_mounts(proxy: AuthProxySpec) -> list[SecretMount]:
    """Every Secret the rules read, with only the keys they read (least exposure)."""
    keys: dict[str, set[str]] = {}
    for rule in proxy.rules or ():
        for h in rule.headers:
            if h.secret_ref is not None:
                keys.setdefault(h.secret_ref.name, set()).add(h.secret_ref.key)
    return [
        SecretMount(secret=s, volume=f"berth-secret-{digest(s, 12)}", keys=tuple(sorted(k)))
        for s, k in sorted(keys.items())
    ]


def canonical_cidr(cidr: str) -> str:
    """``10.1.2.3/8`` -> ``10.0.0.0/8`` (NetworkPolicy and the proxy want network addresses)."""
    return str(ipaddress.ip_network(cidr, strict=False))


def deny_cidrs(egress: EgressSpec) -> list[str]:
    """Ranges the proxy refuses (explicit ``allowCIDRs`` win over them)."""
    out = list(ALWAYS_DENIED)
    if not egress.allow_metadata:
        out.extend(METADATA_CIDRS)
    if not egress.allow_cluster_cidrs:
        out.extend(CLUSTER_CIDRS)
    return out


def allowed_ports(egress: EgressSpec) -> list[int]:
    return sorted(set(egress.allow_ports or DEFAULT_PORTS))


def _header(h: HeaderInjection, mounts: dict[str, SecretMount]) -> dict[str, Any]:
    if h.secret_ref is None:
        assert h.oauth_provider is not None
        return {"name": h.name, "value": h.value, "oauthProvider": h.oauth_provider}
    return {
        "name": h.name,
        "value": h.value,
        "secretFile": mounts[h.secret_ref.name].file(h.secret_ref.key),
    }


def proxy_config(proxy: AuthProxySpec) -> dict[str, Any]:
    """The ``config.json`` object (see SANDBOX_CONTRACT.md)."""
    mounts = {m.secret: m for m in secret_mounts(proxy)}
    rules = []
    for rule in proxy.rules or ():
        out: dict[str, Any] = {
            "name": rule.name,
            "hosts": list(rule.hosts),
            "headers": [_header(h, mounts) for h in rule.headers],
        }
        if rule.path_prefix is not None:
            out["pathPrefix"] = rule.path_prefix
        if rule.placeholder is not None:
            out["placeholder"] = rule.placeholder
        rules.append(out)
    egress = proxy.egress
    config: dict[str, Any] = {
        "listen": f"127.0.0.1:{PROXY_PORT}",
        "adminListen": f"127.0.0.1:{PROXY_ADMIN_PORT}",
        "caCertFile": f"{CA_KEY_DIR}/tls.crt",
        "caKeyFile": f"{CA_KEY_DIR}/tls.key",
        "rules": rules,
        "allow": {
            "hosts": list(egress.allow_hosts or ()),
            "cidrs": [canonical_cidr(c) for c in egress.allow_cidrs or ()],
            "ports": allowed_ports(egress),
        },
        "passthrough": list(proxy.passthrough_hosts or ()),
        "denyCidrs": deny_cidrs(egress),
    }
    if proxy.upstream_ca is not None:
        config["upstreamCAFile"] = f"{UPSTREAM_CA_DIR}/{UPSTREAM_CA_FILE}"
    if proxy.oauth_providers():
        config["agentAuth"] = agent_auth.config_block()
    return config


def proxy_config_json(proxy: AuthProxySpec) -> str:
    """Stable serialization (its hash goes into the Pod template hash)."""
    return json.dumps(proxy_config(proxy), indent=2, sort_keys=True) + "\n"


def proxy_config_map(pool: Subject, spec: SandboxPoolSpec) -> dict[str, Any]:
    """ConfigMap ``<pool>-auth-proxy`` with ``config.json``, owned by the pool."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_metadata(
            pool, PoolNames(pool.name).proxy_config, labels={FROM_POOL_LABEL: pool.name}
        ),
        "data": {CONFIG_KEY: proxy_config_json(spec.auth_proxy)},
    }
