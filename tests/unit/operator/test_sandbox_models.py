"""SandboxPool and SandboxClaim models: safe defaults, refused specs, and the generated CRDs
(structural, defaults equal to the models', CEL twin of every pydantic check, scale)."""

from __future__ import annotations

from typing import Any

import pytest
from berth_operator.api.crd import build_crd
from berth_operator.api.registry import KINDS, SANDBOX_CLAIM, SANDBOX_POOL
from berth_operator.api.sandboxpool import parse_duration
from pydantic import ValidationError

from tests.unit.operator.sandbox_factories import GITHUB_RULE, OPENAI_RULE, claim_spec, pool_spec
from tests.unit.operator.test_crds import _apply_defaults, _walk


def _schema(kind: Any) -> dict[str, Any]:
    crd = build_crd(kind)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _cel_messages(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for r in node.get("x-kubernetes-validations", ()):
            out.add(r["message"])
        for v in node.values():
            out |= _cel_messages(v)
    elif isinstance(node, list):
        for v in node:
            out |= _cel_messages(v)
    return out


def test_registered_with_their_own_crds() -> None:
    assert SANDBOX_POOL in KINDS and SANDBOX_CLAIM in KINDS
    assert SANDBOX_POOL.crd_name == "sandboxpools.berth.dev"
    assert SANDBOX_CLAIM.crd_name == "sandboxclaims.berth.dev"


def test_pool_defaults_are_the_safe_choices() -> None:
    s = pool_spec()
    sc = s.template.security_context
    assert sc.run_as_non_root is True and sc.run_as_user == 1000 and sc.run_as_group == 1000
    assert sc.allow_privilege_escalation is False
    assert sc.capabilities_add is None
    assert sc.seccomp_profile.type == "RuntimeDefault"
    assert s.template.automount_service_account_token is False
    assert s.auth_proxy.image is None and s.auth_proxy.netinit_image is None  # operator's
    assert s.auth_proxy.image_pull_policy is None
    assert s.auth_proxy.mode == "Transparent"
    assert s.auth_proxy.egress.allow_metadata is False
    assert s.auth_proxy.egress.allow_cluster_cidrs is False
    assert s.network_policy.mode == "Managed"
    assert s.update_strategy.type == "OnReplenish"
    assert s.readiness_grace_period_seconds == 300
    assert s.lifecycle.idle_timeout is None and s.lifecycle.max_lifetime is None


def test_wire_is_camel_case_with_explicit_acronyms() -> None:
    s = pool_spec(authProxy={"egress": {"allowCIDRs": ["10.0.0.0/8"], "allowClusterCIDRs": True}})
    egress = s.wire()["authProxy"]["egress"]
    assert egress["allowCIDRs"] == ["10.0.0.0/8"] and egress["allowClusterCIDRs"] is True
    assert claim_spec().wire() == {"poolRef": {"name": "py"}, "threadId": "t-1"}
    hashed = claim_spec(executorTokenSHA256="ab" * 32).wire()
    assert hashed["executorTokenSHA256"] == "ab" * 32


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("250ms", 0.25), ("1.5h", 5400)],
)
def test_durations(value: str, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["30", "30 minutes", "1d", "-5m", "", "m"])
def test_bad_durations(value: str) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(value)


def _template(**fields: Any) -> dict[str, Any]:
    return {"image": "python:3.12-slim", **fields}


def _oauth_rule(**header: Any) -> dict[str, Any]:
    h = {"name": "Authorization", "value": "Bearer {secret}", "oauthProvider": "calendar"}
    h.update(header)
    return {"name": "calendar", "hosts": ["cal.example.com"], "headers": [h]}


POOL_REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"replicas": 6, "maxSize": 5}, "maxSize (warm plus claimed Pods) must be >= replicas"),
    ({"maxSize": None}, "Input should be a valid integer"),
    (
        {
            "template": _template(
                env=[{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
            )
        },
        "secretKeyRef is not allowed in the sandbox",
    ),
    (
        {"template": _template(envFrom=[{"secretRef": {"name": "s"}}])},
        "envFrom.secretRef is not allowed in the sandbox",
    ),
    (
        {"template": _template(volumes=[{"name": "v", "secret": {"secretName": "s"}}])},
        "secret and projected volumes are not allowed",
    ),
    (
        {"template": _template(volumes=[{"name": "v", "projected": {"sources": []}}])},
        "secret and projected volumes are not allowed",
    ),
    (
        {"template": _template(volumes=[{"name": "v", "hostPath": {"path": "/"}}])},
        "hostPath volumes are not allowed",
    ),
    (
        {"template": _template(volumes=[{"name": "v"}])},
        "each volume needs exactly one of emptyDir",
    ),
    (
        {"template": _template(volumes=[{"name": "berth-x", "emptyDir": {}}])},
        "volume names starting with 'berth-' are reserved",
    ),
    (
        {
            "template": _template(
                volumes=[{"name": "v", "emptyDir": {}}],
                volumeMounts=[{"name": "v", "mountPath": "/berth"}],
            )
        },
        "mountPath under /berth is reserved",
    ),
    (
        {"template": _template(volumeMounts=[{"name": "v", "mountPath": "/data"}])},
        "must name an entry of template.volumes",
    ),
    ({"template": _template(args=["x"])}, "template.args needs template.command"),
    (
        {"template": _template(env=[{"name": "HTTPS_PROXY", "value": "x"}])},
        "env must not set HTTPS_PROXY",
    ),
    (
        {"template": _template(env=[{"name": "A", "value": "1", "valueFrom": {"fieldRef": {}}}])},
        "set value or valueFrom, not both",
    ),
    (
        {"template": _template(securityContext={"runAsUser": 0})},
        "runAsUser 0 (root) needs runAsNonRoot: false",
    ),
    (
        {"template": _template(securityContext={"runAsUser": 1337})},
        "runAsUser 1337 is the auth-proxy's UID",
    ),
    (
        {"template": _template(securityContext={"capabilitiesAdd": ["SYS_PTRACE", "NET_ADMIN"]})},
        "capabilitiesAdd must not contain NET_ADMIN",
    ),
    (
        {"template": _template(securityContext={"seccompProfile": {"type": "Localhost"}})},
        "seccompProfile type Localhost needs localhostProfile",
    ),
    (
        {"template": _template(labels={"berth.dev/agentdeployment": "agent"})},
        "template.labels must not use the berth.dev/ prefix",
    ),
    (
        {"authProxy": {"rules": [{**OPENAI_RULE, "hosts": ["https://api.openai.com"]}]}},
        "hosts must be lower-case DNS names",
    ),
    (
        {"authProxy": {"rules": [{**OPENAI_RULE, "hosts": ["API.openai.com"]}]}},
        "hosts must be lower-case DNS names",
    ),
    (
        {"authProxy": {"rules": [{**OPENAI_RULE, "hosts": ["*"]}]}},
        "hosts must be lower-case DNS names",
    ),
    (
        {"authProxy": {"rules": [{**OPENAI_RULE, "hosts": ["api.*.com"]}]}},
        "hosts must be lower-case DNS names",
    ),
    (
        {"authProxy": {"rules": [{**OPENAI_RULE, "hosts": []}]}},
        "at least 1 item",
    ),
    (
        {"authProxy": {"rules": [{**OPENAI_RULE, "headers": []}]}},
        "at least 1 item",
    ),
    (
        {
            "authProxy": {
                "rules": [
                    {
                        **OPENAI_RULE,
                        "headers": [
                            {"name": "X", "value": "k", "secretRef": {"name": "s", "key": "k"}}
                        ],
                    }
                ]
            }
        },
        "headers[].value must contain {secret}",
    ),
    (
        {
            "authProxy": {
                "rules": [
                    {
                        **OPENAI_RULE,
                        "headers": [
                            {"name": "X-A", "secretRef": {"name": "s", "key": "k"}},
                            {"name": "x-a", "secretRef": {"name": "s", "key": "j"}},
                        ],
                    }
                ]
            }
        },
        "a rule must not inject the same header twice",
    ),
    (
        {"authProxy": {"rules": [{**OPENAI_RULE, "placeholder": "x{secret}"}]}},
        "placeholder is the dummy value",
    ),
    ({"authProxy": {"rules": [{**OPENAI_RULE, "pathPrefix": "v1"}]}}, "pathPrefix must start"),
    ({"authProxy": {"rules": [OPENAI_RULE, OPENAI_RULE]}}, "rules names must be unique"),
    (
        {"authProxy": {"rules": [OPENAI_RULE], "passthroughHosts": ["api.openai.com"]}},
        "a host cannot be in both a rule",
    ),
    (
        {"authProxy": {"egress": {"allowCIDRs": ["10.0.0.0/33"]}}},
        "allowCIDRs entries must be CIDRs",
    ),
    ({"authProxy": {"egress": {"allowCIDRs": ["10.0.0.1"]}}}, "allowCIDRs entries must be CIDRs"),
    ({"authProxy": {"egress": {"allowPorts": [70000]}}}, "less than or equal to 65535"),
    ({"authProxy": {"egress": {"allowHosts": ["pypi.org/simple"]}}}, "hosts must be lower-case"),
    ({"authProxy": {"mode": "Sidecar"}}, "'Transparent' or 'Explicit'"),
    ({"lifecycle": {"idleTimeout": "30 minutes"}}, "must be a duration"),
    ({"updateStrategy": {"type": "Rolling"}}, "'OnReplenish' or 'Recreate'"),
    ({"networkPolicy": {"mode": "Off"}}, "'Managed' or 'Unmanaged'"),
    ({"readinessGracePeriodSeconds": 1}, "greater than or equal to 10"),
    (
        {"authProxy": {"rules": [_oauth_rule(secretRef={"name": "s", "key": "k"})]}},
        "set secretRef (a Secret key) or oauthProvider (the thread user's OAuth token), not both",
    ),
    (
        {"authProxy": {"rules": [_oauth_rule(oauthProvider=None)]}},
        "headers[] needs secretRef (a Secret key) or oauthProvider",
    ),
    (
        {
            "authProxy": {"rules": [_oauth_rule()], "mode": "Explicit"},
            "networkPolicy": {"allowedDeployments": ["agent"]},
        },
        "headers with oauthProvider need authProxy.mode Transparent",
    ),
    (
        {"authProxy": {"rules": [_oauth_rule()]}},
        "headers with oauthProvider need networkPolicy.allowedDeployments",
    ),
    ({"unknown": 1}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("fields", "message"), POOL_REFUSED)
def test_bad_pools_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        pool_spec(**fields)
    assert message in str(err.value)


def test_valid_full_pool() -> None:
    s = pool_spec(
        template=_template(
            command=["python", "-m", "http.server"],
            args=["9000"],
            env=[
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            envFrom=[{"configMapRef": {"name": "cfg"}}],
            volumes=[{"name": "work", "emptyDir": {"sizeLimit": "1Gi"}}],
            volumeMounts=[{"name": "work", "mountPath": "/work"}],
            runtimeClassName="gvisor",
            securityContext={"runAsNonRoot": False, "runAsUser": 0},
        ),
        authProxy={
            "rules": [OPENAI_RULE, GITHUB_RULE],
            "egress": {"allowHosts": ["*"], "allowPorts": [443, 8443]},
            "passthroughHosts": ["github.com"],
        },
        lifecycle={"idleTimeout": "30m", "maxLifetime": "24h"},
    )
    assert s.lifecycle.idle_timeout_seconds == 1800
    assert s.lifecycle.max_lifetime_seconds == 86400
    assert s.auth_proxy.secret_names() == ["gh", "openai-key"]
    assert s.auth_proxy.rules is not None and s.auth_proxy.rules[1].headers[1].value == "{secret}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"poolRef": {}}, "Field required"),
        ({"threadId": "has spaces"}, "String should match pattern"),
        ({"threadId": "x" * 64}, "at most 63 characters"),
        ({"lifecycle": {"shutdownTime": "tomorrow"}}, "shutdownTime must be an RFC 3339 time"),
        ({"lifecycle": {"shutdownTime": "2026-12-03T18:00:00"}}, "must carry a time zone"),
        ({"lifecycle": {"ttlSecondsAfterFinished": -1}}, "greater than or equal to 0"),
        ({"executorTokenSHA256": "AB" * 32}, "String should match pattern"),
        ({"executorTokenSHA256": "ab" * 31}, "String should match pattern"),
    ],
)
def test_bad_claims_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        claim_spec(**fields)
    assert message in str(err.value)


# --- the generated CRDs --------------------------------------------------------------------


def test_schemas_are_structural() -> None:
    assert _walk(_schema(SANDBOX_POOL)) == []
    assert _walk(_schema(SANDBOX_CLAIM)) == []


@pytest.mark.parametrize(
    "minimal",
    [
        {"template": {"image": "i"}, "maxSize": 3},
        {
            "template": {"image": "i", "volumes": [{"name": "w", "emptyDir": {}}]},
            "maxSize": 3,
            "authProxy": {"rules": [OPENAI_RULE], "egress": {"allowHosts": ["pypi.org"]}},
            "lifecycle": {"idleTimeout": "1h"},
        },
    ],
)
def test_schema_defaults_equal_model_defaults(minimal: dict[str, Any]) -> None:
    spec_schema = _schema(SANDBOX_POOL)["properties"]["spec"]
    assert _apply_defaults(minimal, spec_schema) == pool_spec(**{"replicas": 1, **minimal}).wire()


def test_every_pydantic_check_has_a_cel_twin() -> None:
    """The API server must refuse what the operator would refuse, with the same words."""
    messages = _cel_messages(_schema(SANDBOX_POOL))
    for _, message in POOL_REFUSED:
        if message.startswith(("Input should", "Extra inputs", "at least", "less than", "greater")):
            continue  # plain OpenAPI checks (type, enum, bounds), not CEL
        if message.startswith("'"):
            continue  # enum
        if message == "rules names must be unique":
            continue  # a list-type map in the CRD (API server: "Duplicate value")
        if message.startswith("env must not set "):  # CEL lists every reserved name at once
            name = message.removeprefix("env must not set ")
            assert any(m.startswith("env must not set ") and name in m for m in messages)
            continue
        assert any(message in m for m in messages), message


def test_pool_crd_has_scale_columns_and_name_rules() -> None:
    crd = build_crd(SANDBOX_POOL)
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Replicas"] == ".spec.replicas"
    assert columns["Ready"] == ".status.readyReplicas"
    assert columns["Claimed"] == ".status.claimed"
    assert columns["Age"] == ".metadata.creationTimestamp"
    root = version["schema"]["openAPIV3Schema"]
    assert any("metadata.name.size() <= 50" in r["rule"] for r in root["x-kubernetes-validations"])
    rules = root["properties"]["spec"]["properties"]["authProxy"]["properties"]["rules"]
    assert rules["x-kubernetes-list-type"] == "map" and rules["maxItems"] == 64
    status = root["properties"]["status"]["properties"]
    assert {"replicas", "readyReplicas", "claimed", "selector", "conditions"} <= set(status)
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_claim_crd_columns_and_immutable_scope() -> None:
    crd = build_crd(SANDBOX_CLAIM)
    version = crd["spec"]["versions"][0]
    assert "scale" not in version["subresources"]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["Pool"] == ".spec.poolRef.name"
    assert columns["Pod"] == ".status.podName"
    assert columns["Launch"] == ".status.launchType"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rule, deployment_rule, token_rule = spec["x-kubernetes-validations"]
    assert "oldSelf.poolRef" in rule["rule"] and "oldSelf.threadId" in rule["rule"]
    assert "self.deploymentRef == oldSelf.deploymentRef" in deployment_rule["rule"]
    assert "self.executorTokenSHA256 == oldSelf.executorTokenSHA256" in token_rule["rule"]
    assert spec["properties"]["executorTokenSHA256"]["pattern"] == "^[0-9a-f]{64}$"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["launchType"]["enum"] == ["warm", "cold"]
    assert {"podName", "podIP", "boundAt", "observedGeneration"} <= set(status)


def test_cel_lists_are_bounded() -> None:
    """Unbounded lists under CEL rules blow the API server's cost budget."""

    def walk(node: dict[str, Any], path: str) -> list[str]:
        bad = []
        ruled = _cel_messages(node) or _cel_messages(node.get("items", {}))
        if node.get("type") == "array" and "maxItems" not in node and ruled:
            bad.append(path)
        for k, v in node.get("properties", {}).items():
            bad += walk(v, f"{path}.{k}")
        if isinstance(node.get("items"), dict):
            bad += walk(node["items"], f"{path}[]")
        return bad

    assert walk(_schema(SANDBOX_POOL), "") == []
