"""The sandbox Pod: safe defaults, no Secret reaches the sandbox container, the proxy holds
them all, CA bundle and proxy variables, init containers per mode, labels and hashes."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from berth_operator.api.sandboxpool import CA_ENV, SandboxPoolSpec
from berth_operator.render.sandbox import pod as sp
from berth_operator.render.sandbox.names import (
    CLAIM_LABEL,
    FROM_POOL_LABEL,
    POOL_LABEL,
    STATE_LABEL,
    TEMPLATE_HASH_LABEL,
    TOKEN_HASH_ANNOTATION,
)

from tests.unit.operator.sandbox_factories import (
    GITHUB_RULE,
    IMAGES,
    OPENAI_RULE,
    claim_subject,
    pool_spec,
    pool_subject,
)

K8S_VERSION = "1.36"

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "rules-transparent": {
        "authProxy": {"rules": [OPENAI_RULE, GITHUB_RULE], "passthroughHosts": ["github.com"]}
    },
    "explicit-full-template": {
        "template": {
            "image": "python:3.12-slim",
            "command": ["python", "-m", "http.server"],
            "args": ["9000"],
            "workingDir": "/work",
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                {"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "X_"}],
            "resources": {"limits": {"cpu": 2, "memory": "2Gi"}},
            "volumes": [
                {"name": "work", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
                {"name": "cfg", "configMap": {"name": "cfg"}},
            ],
            "volumeMounts": [
                {"name": "work", "mountPath": "/work"},
                {"name": "data", "mountPath": "/data", "readOnly": True},
                {"name": "cfg", "mountPath": "/etc/cfg"},
            ],
            "runtimeClassName": "gvisor",
            "securityContext": {
                "readOnlyRootFilesystem": True,
                "capabilitiesAdd": ["SYS_PTRACE"],
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
            },
            "labels": {"team": "a"},
            "annotations": {"note": "x"},
            "nodeSelector": {"sandbox": "true"},
            "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}],
            "imagePullSecrets": [{"name": "reg"}],
            "priorityClassName": "low",
            "terminationGracePeriodSeconds": 5,
        },
        "authProxy": {"mode": "Explicit", "rules": [OPENAI_RULE], "resources": {}},
    },
}


def warm(spec: SandboxPoolSpec | None = None) -> dict[str, Any]:
    return sp.warm_pod(pool_subject(), spec or pool_spec(), "py-abcde", images=IMAGES)


def cold(spec: SandboxPoolSpec | None = None) -> dict[str, Any]:
    binding = sp.Binding(
        claim=claim_subject("c1"),
        token_sha256="ab" * 32,
        claimed_at="2026-12-03T08:00:00Z",
        thread_id="t-1",
    )
    return sp.cold_pod(pool_subject(), spec or pool_spec(), "py-cold1", binding, images=IMAGES)


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    s = pod["spec"]
    return {c["name"]: c for c in [*s.get("initContainers", ()), *s["containers"]]}


def secret_volumes(pod: dict[str, Any]) -> set[str]:
    """Volumes that expose a Secret in any way (secret, projected secret, SA token)."""
    out = set()
    for v in pod["spec"]["volumes"]:
        if "secret" in v:
            out.add(v["name"])
        for src in (v.get("projected") or {}).get("sources", ()):
            if "secret" in src or "serviceAccountToken" in src:
                out.add(v["name"])
    return out


def _walk_keys(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [k for k, v in node.items() for k in (k, *_walk_keys(v))]
    if isinstance(node, list):
        return [k for v in node for k in _walk_keys(v)]
    return []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("render", [warm, cold], ids=["warm", "cold"])
def test_valid_pod(variant: str, render: Any) -> None:
    kubernetes_validate.validate(render(pool_spec(**VARIANTS[variant])), K8S_VERSION, strict=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_secret_reaches_the_sandbox_container(variant: str) -> None:
    pod = warm(pool_spec(**VARIANTS[variant]))
    box = containers(pod)["sandbox"]
    secret_vols = secret_volumes(pod)
    assert secret_vols, "the proxy's CA key at least is a Secret volume"
    assert not {m["name"] for m in box["volumeMounts"]} & secret_vols
    assert "secretKeyRef" not in _walk_keys(box.get("env", []))
    assert all("secretRef" not in e for e in box.get("envFrom", []))
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert "serviceAccountToken" not in _walk_keys(pod["spec"]["volumes"])
    # No other container that shares the sandbox's file systems mounts them either.
    for name, c in containers(pod).items():
        if name != "auth-proxy":
            assert not {m["name"] for m in c.get("volumeMounts", ())} & secret_vols, name


def test_only_the_proxy_mounts_the_ca_key_and_rule_secrets() -> None:
    pod = warm(pool_spec(**VARIANTS["rules-transparent"]))
    by_name = {v["name"]: v for v in pod["spec"]["volumes"]}
    proxy = containers(pod)["auth-proxy"]
    mounted = {m["name"]: m for m in proxy["volumeMounts"]}
    secrets = {by_name[n]["secret"]["secretName"]: by_name[n] for n in secret_volumes(pod)}
    assert set(secrets) == {"py-ca", "openai-key", "gh"}
    for secret, vol in secrets.items():
        assert vol["name"] in mounted and mounted[vol["name"]]["readOnly"] is True
        if secret != "py-ca":
            assert mounted[vol["name"]]["mountPath"] == f"/berth/secrets/{secret}"
    # Only the keys a rule reads are projected.
    assert secrets["gh"]["secret"]["items"] == [
        {"key": "org", "path": "org"},
        {"key": "t", "path": "t"},
    ]
    assert secrets["py-ca"]["secret"]["items"] == [
        {"key": "tls.crt", "path": "tls.crt"},
        {"key": "tls.key", "path": "tls.key"},
    ]
    assert mounted[secrets["py-ca"]["name"]]["mountPath"] == "/berth/ca-key"


def test_sandbox_safe_defaults() -> None:
    pod = warm()
    box = containers(pod)["sandbox"]
    assert box["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for forbidden in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"):
        assert forbidden not in spec
    proxy = containers(pod)["auth-proxy"]["securityContext"]
    assert proxy["runAsUser"] == 1337 and proxy["runAsNonRoot"] is True
    assert proxy["readOnlyRootFilesystem"] is True and proxy["capabilities"] == {"drop": ["ALL"]}


def test_explicit_opt_outs_reach_the_sandbox_only() -> None:
    spec = pool_spec(
        template={
            "image": "i",
            "securityContext": {
                "runAsNonRoot": False,
                "runAsUser": 0,
                "allowPrivilegeEscalation": True,
                "capabilitiesAdd": ["SYS_PTRACE"],
                "seccompProfile": {"type": "Unconfined"},
            },
            "automountServiceAccountToken": True,
            "serviceAccountName": "sbx",
        }
    )
    pod = warm(spec)
    box = containers(pod)["sandbox"]["securityContext"]
    assert box["runAsUser"] == 0 and box["runAsNonRoot"] is False
    assert box["allowPrivilegeEscalation"] is True
    assert box["capabilities"] == {"drop": ["ALL"], "add": ["SYS_PTRACE"]}
    assert box["seccompProfile"] == {"type": "Unconfined"}
    assert pod["spec"]["automountServiceAccountToken"] is True
    assert pod["spec"]["serviceAccountName"] == "sbx"
    assert containers(pod)["auth-proxy"]["securityContext"]["seccompProfile"] == {
        "type": "RuntimeDefault"
    }


def test_ca_bundle_comes_from_a_config_map_with_every_variable() -> None:
    pod = warm()
    box = containers(pod)["sandbox"]
    env = {e["name"]: e.get("value") for e in box["env"]}
    for name in (
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
    ):
        assert env[name] == "/berth/ca/ca-bundle.crt"
    assert set(CA_ENV) <= set(env)
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "berth-ca-bundle")
    assert vol["configMap"] == {
        "name": "py-ca-bundle",
        "items": [{"key": "ca-bundle.crt", "path": "ca-bundle.crt"}],
    }
    mount = next(m for m in box["volumeMounts"] if m["name"] == "berth-ca-bundle")
    assert mount == {"name": "berth-ca-bundle", "mountPath": "/berth/ca", "readOnly": True}
    assert "HTTPS_PROXY" not in env


def test_transparent_mode_has_the_privileged_init_container_only_there() -> None:
    pod = warm()
    inits = [c["name"] for c in pod["spec"]["initContainers"]]
    assert inits == ["egress-init", "executor-install"]
    init = pod["spec"]["initContainers"][0]
    assert init["command"] == [
        "/usr/local/bin/berth-netinit",
        "--proxy-uid",
        "1337",
        "--proxy-port",
        "15001",
        "--dns-allow",
    ]
    assert init["securityContext"]["capabilities"] == {
        "drop": ["ALL"],
        "add": ["NET_ADMIN", "NET_RAW"],
    }
    assert init["securityContext"]["allowPrivilegeEscalation"] is False
    assert "volumeMounts" not in init
    privileged = [
        c["name"]
        for c in containers(pod).values()
        if c["securityContext"].get("runAsUser") == 0
        or "add" in c["securityContext"]["capabilities"]
    ]
    assert privileged == ["egress-init"]


def test_explicit_mode_sets_proxy_env_and_has_no_egress_init() -> None:
    pod = warm(pool_spec(authProxy={"mode": "Explicit"}))
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["executor-install"]
    env = {e["name"]: e["value"] for e in containers(pod)["sandbox"]["env"]}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert env[name] == "http://127.0.0.1:15001"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1"


def test_executor_wraps_the_user_command() -> None:
    box = containers(warm(pool_spec(**VARIANTS["explicit-full-template"])))["sandbox"]
    assert box["command"] == [
        "/berth/bin/berth-executor",
        "serve",
        "--addr",
        ":8790",
        "--token-hash-file",
        "/berth/meta/executor-token-sha256",
        "--",
        "python",
        "-m",
        "http.server",
        "9000",
    ]
    assert "args" not in box
    assert containers(warm())["sandbox"]["command"][-1] == "/berth/meta/executor-token-sha256"
    assert box["ports"] == [{"name": "executor", "containerPort": 8790, "protocol": "TCP"}]
    assert box["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "executor"}


def test_executor_binary_and_token_hash_volumes() -> None:
    pod = warm()
    by_name = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert "emptyDir" in by_name["berth-bin"]
    assert by_name["berth-meta"]["downwardAPI"]["items"] == [
        {
            "path": "executor-token-sha256",
            "fieldRef": {"fieldPath": "metadata.annotations['berth.dev/executor-token-sha256']"},
        }
    ]
    c = containers(pod)
    assert c["executor-install"]["command"] == [
        "/usr/local/bin/berth-executor",
        "install",
        "--to",
        "/berth/bin",
    ]
    assert {"name": "berth-bin", "mountPath": "/berth/bin", "readOnly": True} in c["sandbox"][
        "volumeMounts"
    ]
    assert c["auth-proxy"]["command"] == [
        "/usr/local/bin/berth-auth-proxy",
        "--config",
        "/berth/proxy/config.json",
    ]
    assert by_name["berth-proxy-config"]["configMap"]["name"] == "py-auth-proxy"


def test_warm_pod_labels_and_owner() -> None:
    pod = warm()
    meta = pod["metadata"]
    labels = meta["labels"]
    assert labels[POOL_LABEL] == labels[FROM_POOL_LABEL] == "py"
    assert labels[STATE_LABEL] == "warm"
    assert labels[TEMPLATE_HASH_LABEL] == sp.template_hash(pool_spec(), IMAGES)
    assert "berth.dev/agentdeployment" not in labels
    assert CLAIM_LABEL not in labels
    assert TOKEN_HASH_ANNOTATION not in meta.get("annotations", {})
    (owner,) = meta["ownerReferences"]
    assert owner["kind"] == "SandboxPool" and owner["uid"] == "pool-uid" and owner["controller"]
    unnamed = sp.warm_pod(pool_subject(), pool_spec(), images=IMAGES)
    assert unnamed["metadata"]["generateName"] == "py-" and "name" not in unnamed["metadata"]


def test_cold_pod_is_born_bound_to_its_claim() -> None:
    pod = cold()
    meta = pod["metadata"]
    assert POOL_LABEL not in meta["labels"]
    assert meta["labels"][CLAIM_LABEL] == "c1"
    assert meta["labels"][STATE_LABEL] == "claimed"
    assert meta["labels"]["berth.dev/launch"] == "cold"
    assert meta["labels"]["berth.dev/thread-id"] == "t-1"
    assert meta["labels"][FROM_POOL_LABEL] == "py"
    assert meta["annotations"][TOKEN_HASH_ANNOTATION] == "ab" * 32
    (owner,) = meta["ownerReferences"]
    assert owner["kind"] == "SandboxClaim" and owner["name"] == "c1"


def test_template_hash_follows_what_shapes_the_pod() -> None:
    base = sp.template_hash(pool_spec(), IMAGES)
    assert base == sp.template_hash(pool_spec(), IMAGES)
    assert base == sp.template_hash(pool_spec(replicas=4, maxSize=9), IMAGES)
    assert base == sp.template_hash(pool_spec(lifecycle={"idleTimeout": "1m"}), IMAGES)
    assert base == sp.template_hash(pool_spec(networkPolicy={"allowedDeployments": ["a"]}), IMAGES)
    assert base != sp.template_hash(pool_spec(template={"image": "python:3.13"}), IMAGES)
    assert base != sp.template_hash(pool_spec(authProxy={"mode": "Explicit"}), IMAGES)
    assert base != sp.template_hash(pool_spec(authProxy={"rules": [OPENAI_RULE]}), IMAGES)


def test_upstream_ca_reaches_the_proxy_only() -> None:
    """A private API's CA (a ConfigMap key) is mounted into the proxy alone and named as
    its upstreamCAFile; without the field nothing of it is rendered."""
    spec = pool_spec(authProxy={"upstreamCA": {"name": "api-ca", "key": "root.pem"}})
    pod = warm(spec)
    kubernetes_validate.validate(pod, "1.30", strict=True)
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == sp.VOL_UPSTREAM_CA)
    assert vol["configMap"] == {"name": "api-ca", "items": [{"key": "root.pem", "path": "ca.crt"}]}
    c = containers(pod)
    assert {"name": sp.VOL_UPSTREAM_CA, "mountPath": "/berth/upstream-ca", "readOnly": True} in (
        c["auth-proxy"]["volumeMounts"]
    )
    for name in ("sandbox",):
        assert all(m["name"] != sp.VOL_UPSTREAM_CA for m in c[name]["volumeMounts"])
    plain = warm()
    assert all(v["name"] != sp.VOL_UPSTREAM_CA for v in plain["spec"]["volumes"])
