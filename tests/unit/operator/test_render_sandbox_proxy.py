"""The auth-proxy config.json (the sandbox contract's format) and its ConfigMap."""

from __future__ import annotations

import json

import kubernetes_validate
from berth_operator.render.sandbox import proxy as px

from tests.unit.operator.sandbox_factories import (
    GITHUB_RULE,
    OPENAI_RULE,
    pool_spec,
    pool_subject,
)


def test_config_matches_the_contract() -> None:
    spec = pool_spec(
        authProxy={
            "rules": [OPENAI_RULE, GITHUB_RULE],
            "egress": {
                "allowHosts": ["pypi.org", "*.pythonhosted.org"],
                "allowCIDRs": ["10.1.2.3/16"],
                "allowPorts": [443, 8443, 443],
            },
            "passthroughHosts": ["github.com"],
        }
    )
    cfg = px.proxy_config(spec.auth_proxy)
    assert cfg["listen"] == "127.0.0.1:15001"
    assert cfg["adminListen"] == "127.0.0.1:15021"
    assert cfg["caCertFile"] == "/berth/ca-key/tls.crt"
    assert cfg["caKeyFile"] == "/berth/ca-key/tls.key"
    assert cfg["rules"][0] == {
        "name": "openai",
        "hosts": ["api.openai.com", "*.openai.azure.com"],
        "pathPrefix": "/v1/",
        "headers": [
            {
                "name": "Authorization",
                "value": "Bearer {secret}",
                "secretFile": "/berth/secrets/openai-key/api-key",
            }
        ],
        "placeholder": "sk-berth-placeholder",
    }
    assert cfg["rules"][1]["headers"][1] == {
        "name": "X-Org",
        "value": "{secret}",
        "secretFile": "/berth/secrets/gh/org",
    }
    assert "pathPrefix" not in cfg["rules"][1] and "placeholder" not in cfg["rules"][1]
    assert cfg["allow"] == {
        "hosts": ["pypi.org", "*.pythonhosted.org"],
        "cidrs": ["10.1.0.0/16"],
        "ports": [443, 8443],
    }
    assert cfg["passthrough"] == ["github.com"]
    assert "169.254.169.254/32" in cfg["denyCidrs"] and "10.0.0.0/8" in cfg["denyCidrs"]


def test_no_secret_value_in_the_config() -> None:
    text = px.proxy_config_json(pool_spec(authProxy={"rules": [OPENAI_RULE]}).auth_proxy)
    assert "secretRef" not in text
    assert json.loads(text)["rules"][0]["headers"][0]["secretFile"].startswith("/berth/secrets/")


def test_default_ports_and_denied_ranges() -> None:
    cfg = px.proxy_config(pool_spec().auth_proxy)
    assert cfg["allow"] == {"hosts": [], "cidrs": [], "ports": [80, 443]}
    assert cfg["rules"] == [] and cfg["passthrough"] == []
    deny = cfg["denyCidrs"]
    for cidr in (
        "169.254.169.254/32",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "127.0.0.0/8",
    ):
        assert cidr in deny


def test_opt_ins_lift_metadata_and_cluster_blocks_but_never_loopback() -> None:
    only_meta = px.proxy_config(
        pool_spec(authProxy={"egress": {"allowMetadata": True}}).auth_proxy
    )["denyCidrs"]
    assert "169.254.169.254/32" not in only_meta and "10.0.0.0/8" in only_meta
    only_cluster = px.proxy_config(
        pool_spec(authProxy={"egress": {"allowClusterCIDRs": True}}).auth_proxy
    )["denyCidrs"]
    assert "10.0.0.0/8" not in only_cluster and "169.254.169.254/32" in only_cluster
    both = px.proxy_config(
        pool_spec(
            authProxy={"egress": {"allowMetadata": True, "allowClusterCIDRs": True}}
        ).auth_proxy
    )["denyCidrs"]
    assert both == ["127.0.0.0/8", "::1/128", "0.0.0.0/8"]


def test_secret_mounts_dedupe_and_sort() -> None:
    rule2 = {
        **OPENAI_RULE,
        "name": "openai2",
        "hosts": ["api2.openai.com"],
        "headers": [{"name": "X-K", "secretRef": {"name": "openai-key", "key": "api-key"}}],
    }
    mounts = px.secret_mounts(
        pool_spec(authProxy={"rules": [OPENAI_RULE, rule2, GITHUB_RULE]}).auth_proxy
    )
    assert [(m.secret, m.keys) for m in mounts] == [
        ("gh", ("org", "t")),
        ("openai-key", ("api-key",)),
    ]
    assert len({m.volume for m in mounts}) == 2
    assert all(m.volume.startswith("berth-secret-") and len(m.volume) <= 63 for m in mounts)


def test_config_map_is_owned_and_valid() -> None:
    cm = px.proxy_config_map(pool_subject(), pool_spec(authProxy={"rules": [OPENAI_RULE]}))
    kubernetes_validate.validate(cm, "1.36", strict=True)
    assert cm["metadata"]["name"] == "py-auth-proxy"
    assert cm["metadata"]["ownerReferences"][0]["kind"] == "SandboxPool"
    assert json.loads(cm["data"]["config.json"])["rules"][0]["name"] == "openai"


def test_upstream_ca_file_only_when_set() -> None:
    assert "upstreamCAFile" not in px.proxy_config(pool_spec().auth_proxy)
    spec = pool_spec(authProxy={"upstreamCA": {"name": "api-ca", "key": "ca.pem"}})
    assert px.proxy_config(spec.auth_proxy)["upstreamCAFile"] == "/berth/upstream-ca/ca.crt"
