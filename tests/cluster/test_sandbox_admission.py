"""SandboxPool and SandboxClaim admission on a real API server: the generated CRDs are
accepted (CEL compiles within the cost budget), defaults are filled in, and the mistakes
users make are refused with a message that says what to do."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import ROOT

pytestmark = pytest.mark.cluster

POOL = "sandboxpools.berth.dev"
CLAIM = "sandboxclaims.berth.dev"


@pytest.fixture(scope="module")
def sandbox_crds(kubectl: Kubectl) -> None:
    for crd in (POOL, CLAIM):
        kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds" / f"{crd}.yaml")
        )
    kubectl("wait", "--for=condition=Established", f"crd/{POOL}", f"crd/{CLAIM}", "--timeout=30s")


def pool(name: str = "py", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "SandboxPool",
        "metadata": {"name": name},
        "spec": {"template": {"image": "python:3.12-slim"}, "replicas": 2, "maxSize": 5},
    }
    body["spec"].update(spec)
    return body


def claim(name: str = "c1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "SandboxClaim",
        "metadata": {"name": name},
        "spec": {"poolRef": {"name": "py"}, "threadId": "t-1"},
    }
    body["spec"].update(spec)
    return body


def _apply(kubectl: Kubectl, ns: str, body: dict[str, Any]) -> Any:
    return kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body), check=False)


RULE = {
    "name": "openai",
    "hosts": ["api.openai.com"],
    "headers": [
        {
            "name": "Authorization",
            "value": "Bearer {secret}",
            "secretRef": {"name": "k", "key": "v"},
        }
    ],
}


def _template(**fields: Any) -> dict[str, Any]:
    return {"image": "python:3.12-slim", **fields}


POOL_REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("max-below-replicas", {"replicas": 6, "maxSize": 5}, "maxSize (warm plus claimed Pods)"),
    (
        "secret-env",
        {
            "template": _template(
                env=[{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
            )
        },
        "secretKeyRef is not allowed in the sandbox",
    ),
    (
        "secret-envfrom",
        {"template": _template(envFrom=[{"secretRef": {"name": "s"}}])},
        "envFrom.secretRef is not allowed in the sandbox",
    ),
    (
        "secret-volume",
        {"template": _template(volumes=[{"name": "v", "secret": {"secretName": "s"}}])},
        "secret and projected volumes are not allowed in the sandbox",
    ),
    (
        "hostpath-volume",
        {"template": _template(volumes=[{"name": "v", "hostPath": {"path": "/"}}])},
        "hostPath volumes are not allowed",
    ),
    (
        "reserved-mount",
        {
            "template": _template(
                volumes=[{"name": "v", "emptyDir": {}}],
                volumeMounts=[{"name": "v", "mountPath": "/berth/bin"}],
            )
        },
        "mountPath under /berth is reserved",
    ),
    (
        "mount-without-volume",
        {"template": _template(volumeMounts=[{"name": "nope", "mountPath": "/data"}])},
        "must name an entry of template.volumes",
    ),
    ("args-without-command", {"template": _template(args=["-c", "x"])}, "template.args needs"),
    (
        "reserved-env",
        {"template": _template(env=[{"name": "SSL_CERT_FILE", "value": "/x"}])},
        "env must not set SSL_CERT_FILE",
    ),
    (
        "root-without-opt-out",
        {"template": _template(securityContext={"runAsUser": 0})},
        "runAsUser 0 (root) needs runAsNonRoot: false",
    ),
    (
        "url-as-host",
        {"authProxy": {"rules": [{**RULE, "hosts": ["https://api.openai.com"]}]}},
        "hosts must be lower-case DNS names",
    ),
    (
        "bare-star-rule",
        {"authProxy": {"rules": [{**RULE, "hosts": ["*"]}]}},
        "hosts must be lower-case DNS names",
    ),
    (
        "header-without-secret",
        {
            "authProxy": {
                "rules": [
                    {
                        **RULE,
                        "headers": [
                            {
                                "name": "X-Key",
                                "value": "abc",
                                "secretRef": {"name": "k", "key": "v"},
                            }
                        ],
                    }
                ]
            }
        },
        "headers[].value must contain {secret}",
    ),
    (
        "rule-without-headers",
        {"authProxy": {"rules": [{**RULE, "headers": []}]}},
        "should have at least 1 items",
    ),
    (
        "duplicate-rule-names",
        {"authProxy": {"rules": [RULE, RULE]}},
        "Duplicate value",
    ),
    (
        "rule-host-passthrough",
        {"authProxy": {"rules": [RULE], "passthroughHosts": ["api.openai.com"]}},
        "a host cannot be in both a rule",
    ),
    (
        "bad-cidr",
        {"authProxy": {"egress": {"allowCIDRs": ["10.0.0.0/33"]}}},
        "allowCIDRs entries must be CIDRs",
    ),
    (
        "bad-port",
        {"authProxy": {"egress": {"allowPorts": [0]}}},
        "should be greater than or equal to 1",
    ),
    (
        "bad-duration",
        {"lifecycle": {"idleTimeout": "30 minutes"}},
        "must be a duration such as 90s",
    ),
    ("bad-mode", {"authProxy": {"mode": "Sidecar"}}, 'Unsupported value: "Sidecar"'),
    (
        "proxy-uid",
        {"template": _template(securityContext={"runAsUser": 1337})},
        "runAsUser 1337 is the auth-proxy's UID",
    ),
    (
        "net-admin",
        {"template": _template(securityContext={"capabilitiesAdd": ["NET_ADMIN"]})},
        "capabilitiesAdd must not contain NET_ADMIN",
    ),
    (
        "reserved-label",
        {"template": _template(labels={"berth.dev/agentdeployment": "agent"})},
        "template.labels must not use the berth.dev/ prefix",
    ),
    (
        "env-value-and-valuefrom",
        {
            "template": _template(
                env=[{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]
            )
        },
        "set value or valueFrom, not both",
    ),
    (
        "placeholder-with-secret",
        {"authProxy": {"rules": [{**RULE, "placeholder": "{secret}"}]}},
        "placeholder is the dummy value",
    ),
    (
        "relative-path-prefix",
        {"authProxy": {"rules": [{**RULE, "pathPrefix": "v1/"}]}},
        "pathPrefix must start with '/'",
    ),
    ("long-name", {}, "metadata.name must be at most 50 characters"),
]


@pytest.mark.parametrize(
    ("case", "spec", "message"), POOL_REJECTED, ids=[c[0] for c in POOL_REJECTED]
)
def test_bad_pools_are_refused_with_a_clear_message(
    sandbox_crds: None,
    kubectl: Kubectl,
    namespace: str,
    case: str,
    spec: dict[str, Any],
    message: str,
) -> None:
    name = "a" * 51 if case == "long-name" else "bad"
    result = _apply(kubectl, namespace, pool(name, **spec))
    assert result.returncode != 0, f"{case} was accepted"
    assert message in result.stderr, result.stderr


def test_full_pool_is_accepted_with_safe_defaults_and_scales(
    sandbox_crds: None, kubectl: Kubectl, namespace: str
) -> None:
    body = pool(
        template=_template(
            command=["sleep", "infinity"],
            env=[
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            ],
            volumes=[{"name": "work", "emptyDir": {}}],
            volumeMounts=[{"name": "work", "mountPath": "/work"}],
            runtimeClassName="gvisor",
        ),
        lifecycle={"idleTimeout": "30m", "maxLifetime": "12h"},
        updateStrategy={"type": "Recreate"},
        authProxy={
            "mode": "Explicit",
            "rules": [{**RULE, "pathPrefix": "/v1/", "placeholder": "sk-berth"}],
            "egress": {
                "allowHosts": ["pypi.org", "*.pythonhosted.org"],
                "allowCIDRs": ["10.1.0.0/16"],
                "allowPorts": [443],
            },
            "passthroughHosts": ["github.com"],
        },
        networkPolicy={"allowedDeployments": ["agent"]},
    )
    result = _apply(kubectl, namespace, body)
    assert result.returncode == 0, result.stderr
    live = json.loads(kubectl("get", POOL, "py", "-n", namespace, "-o", "json").stdout)
    sc = live["spec"]["template"]["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert live["spec"]["template"]["automountServiceAccountToken"] is False
    assert live["spec"]["networkPolicy"]["mode"] == "Managed"
    assert live["spec"]["readinessGracePeriodSeconds"] == 300
    kubectl("scale", POOL, "py", "-n", namespace, "--replicas=4")
    scaled = json.loads(kubectl("get", POOL, "py", "-n", namespace, "-o", "json").stdout)
    assert scaled["spec"]["replicas"] == 4
    over = kubectl("scale", POOL, "py", "-n", namespace, "--replicas=9", check=False)
    assert over.returncode != 0 and "maxSize" in over.stderr, over.stderr


def test_claims_are_immutable_and_checked(
    sandbox_crds: None, kubectl: Kubectl, namespace: str
) -> None:
    ok = claim(lifecycle={"shutdownTime": "2026-12-03T18:00:00Z", "ttlSecondsAfterFinished": 60})
    assert _apply(kubectl, namespace, ok).returncode == 0
    moved = copy.deepcopy(ok)
    moved["spec"]["poolRef"]["name"] = "other"
    result = _apply(kubectl, namespace, moved)
    assert (
        result.returncode != 0
        and "poolRef, threadId and assistantId are immutable" in result.stderr
    )
    unscoped = copy.deepcopy(ok)
    del unscoped["spec"]["threadId"]
    result = _apply(kubectl, namespace, unscoped)
    assert result.returncode != 0 and "are immutable" in result.stderr
    extended = copy.deepcopy(ok)
    extended["spec"]["lifecycle"]["shutdownTime"] = "2026-12-04T18:00:00Z"
    result = _apply(kubectl, namespace, extended)
    assert result.returncode == 0, result.stderr
    # The executor token's hash, once named, stays (the bound sandbox accepts only it).
    hashed = claim("c6", executorTokenSHA256="ab" * 32)
    assert _apply(kubectl, namespace, hashed).returncode == 0
    for change in ("cd" * 32, None):
        other = copy.deepcopy(hashed)
        if change is None:
            del other["spec"]["executorTokenSHA256"]
        else:
            other["spec"]["executorTokenSHA256"] = change
        result = _apply(kubectl, namespace, other)
        assert result.returncode != 0 and "executorTokenSHA256 is immutable" in result.stderr
    for body, message in (
        (claim("c7", executorTokenSHA256="AB" * 32), "spec.executorTokenSHA256"),
        (claim("c2", threadId="not a label!"), "spec.threadId"),
        (claim("c3", lifecycle={"shutdownTime": "tomorrow"}), "spec.lifecycle.shutdownTime"),
        (claim("C4"), "metadata.name must be a DNS-1123 label"),
        (claim("c5", poolRef={}), "spec.poolRef.name: Required value"),
    ):
        result = _apply(kubectl, namespace, body)
        assert result.returncode != 0 and message in result.stderr, result.stderr


def test_example_manifest_is_accepted(sandbox_crds: None, kubectl: Kubectl, namespace: str) -> None:
    example = ROOT / "examples" / "sandboxpool.yaml"
    result = kubectl("apply", "-n", namespace, "-f", str(example), check=False)
    assert result.returncode == 0, result.stderr
    live = json.loads(kubectl("get", POOL, "python", "-n", namespace, "-o", "json").stdout)
    assert live["spec"]["template"]["securityContext"]["runAsNonRoot"] is True
