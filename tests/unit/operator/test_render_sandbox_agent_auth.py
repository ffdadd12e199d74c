"""Agent Auth in the auth proxy, operator side: a rule header names an ``oauthProvider``;
the proxy config gets the ``agentAuth`` files, only the proxy container mounts the Pod's
optional ``<pod>-agent-auth`` Secret, the NetworkPolicy lets the Pod reach the allowed
runtimes, and a claim's AgentDeployment is checked before its files are derived."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import kubernetes_validate
import pytest
from berth_operator.render.meta import pod_labels
from berth_operator.render.sandbox import agent_auth as aa
from berth_operator.render.sandbox.netpol import network_policy
from berth_operator.render.sandbox.pod import (
    AUTH_PROXY,
    SANDBOX,
    Binding,
    cold_pod,
    template_hash,
    warm_pod,
)
from berth_operator.render.sandbox.proxy import proxy_config, secret_mounts
from berth_runtime.api.agent_auth import sandbox_proxy_token
from pydantic import ValidationError

from tests.unit.operator.factories import subject as agent_subject
from tests.unit.operator.sandbox_factories import (
    IMAGES,
    OPENAI_RULE,
    claim_spec,
    claim_subject,
    pool_spec,
    pool_subject,
)

CALENDAR_RULE: dict[str, Any] = {
    "name": "calendar",
    "hosts": ["calendar.example.com"],
    "headers": [{"name": "Authorization", "value": "Bearer {secret}", "oauthProvider": "calendar"}],
}
THREAD = "3f2b8c1e-8d4e-4a57-9a53-0c1d2e3f4a5b"
KEY = "cd" * 32
NP = {"allowedDeployments": ["agent"]}


def oauth_pool(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "authProxy": {"rules": [OPENAI_RULE, CALENDAR_RULE]},
        "networkPolicy": NP,
    }
    base.update(fields)
    return pool_spec(**base)


def oauth_claim(**fields: Any) -> Any:
    base: dict[str, Any] = {"threadId": THREAD, "deploymentRef": {"name": "agent"}}
    base.update(fields)
    return claim_spec(**base)


def deployment(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image": "example/agent:1",
        "graphs": {"inline": {"graphs": {"agent": "./agent.py:graph"}}},
        "sandbox": {"pool": "py"},
        "service": {"port": 8123},
        "agentAuth": {
            "keysSecretRef": {"name": "agent-auth", "key": "keys"},
            "providers": [
                {
                    "name": "calendar",
                    "issuer": "https://login.example.com/",
                    "clientId": "berth",
                    "clientSecretRef": {"name": "cal", "key": "secret"},
                    "redirectURL": "https://agent.example.com/v2/auth/callback",
                }
            ],
        },
    }
    body.update(spec)
    body = {k: v for k, v in body.items() if v is not None}
    return {"metadata": {"name": "agent", "namespace": "ns1"}, "spec": body}


def key_secret(key: str = KEY) -> dict[str, Any]:
    return {
        "metadata": {"name": "agent-sandbox-key"},
        "data": {"key": base64.b64encode(key.encode()).decode()},
    }


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in pod["spec"]["containers"] if c["name"] == name]
    [c] = found
    return c


# --- the API -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            {"oauthProvider": "calendar", "secretRef": {"name": "s", "key": "k"}},
            "set secretRef (a Secret key) or oauthProvider",
        ),
        ({}, "headers[] needs secretRef (a Secret key) or oauthProvider"),
        ({"oauthProvider": "not a name!"}, "String should match pattern"),
        ({"oauthProvider": ""}, "at least 1 character"),
    ],
)
def test_a_header_names_exactly_one_well_formed_source(
    header: dict[str, Any], message: str
) -> None:
    rule = {
        **CALENDAR_RULE,
        "headers": [{"name": "Authorization", "value": "Bearer {secret}", **header}],
    }
    with pytest.raises(ValidationError) as err:
        pool_spec(authProxy={"rules": [rule]}, networkPolicy=NP)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"authProxy": {"rules": [CALENDAR_RULE], "mode": "Explicit"}},
            "need authProxy.mode Transparent",
        ),
        ({"networkPolicy": {}}, "need networkPolicy.allowedDeployments"),
    ],
)
def test_oauth_rules_need_the_redirect_and_named_deployments(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as err:
        oauth_pool(**fields)
    assert message in str(err.value)


def test_an_unmanaged_policy_needs_no_deployment_list() -> None:
    s = oauth_pool(networkPolicy={"mode": "Unmanaged"})
    assert s.uses_agent_auth and s.auth_proxy.oauth_providers() == ["calendar"]
    assert s.auth_proxy.secret_names() == ["openai-key"]  # the oauth header reads no Secret


def test_claim_deployment_ref() -> None:
    assert oauth_claim().deployment_ref.name == "agent"
    with pytest.raises(ValidationError, match="Field required"):
        claim_spec(deploymentRef={})


# --- proxy config, Pod, NetworkPolicy ------------------------------------------------------


def test_proxy_config_names_the_provider_and_the_files_never_values() -> None:
    config = proxy_config(oauth_pool().auth_proxy)
    calendar = next(r for r in config["rules"] if r["name"] == "calendar")
    assert calendar["headers"] == [
        {"name": "Authorization", "value": "Bearer {secret}", "oauthProvider": "calendar"}
    ]
    assert config["agentAuth"] == {
        "tokenURLFile": "/berth/agent-auth/token-url",
        "threadIdFile": "/berth/agent-auth/thread-id",
        "proxyTokenFile": "/berth/agent-auth/proxy-token",
    }
    openai = next(r for r in config["rules"] if r["name"] == "openai")
    assert openai["headers"][0]["secretFile"] == "/berth/secrets/openai-key/api-key"
    assert [m.secret for m in secret_mounts(oauth_pool().auth_proxy)] == ["openai-key"]
    assert "agentAuth" not in proxy_config(pool_spec(authProxy={"rules": [OPENAI_RULE]}).auth_proxy)


def test_only_the_proxy_mounts_the_pods_optional_agent_auth_secret() -> None:
    pod = warm_pod(pool_subject(), oauth_pool(), "py-abcde", images=IMAGES)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[aa.VOLUME]["secret"] == {
        "secretName": "py-abcde-agent-auth",
        "optional": True,
        "items": [
            {"key": "token-url", "path": "token-url"},
            {"key": "thread-id", "path": "thread-id"},
            {"key": "proxy-token", "path": "proxy-token"},
        ],
    }
    proxy = _container(pod, AUTH_PROXY)
    assert {"name": aa.VOLUME, "mountPath": "/berth/agent-auth", "readOnly": True} in proxy[
        "volumeMounts"
    ]
    for c in [_container(pod, SANDBOX), *pod["spec"]["initContainers"]]:
        assert aa.VOLUME not in {m["name"] for m in c.get("volumeMounts", ())}, c["name"]
    kubernetes_validate.validate(pod, "1.36", strict=True)


def test_cold_pods_mount_their_own_secret_and_other_pools_are_unchanged() -> None:
    binding = Binding(claim_subject(), "ab" * 32, "2026-12-03T08:00:00Z", thread_id=THREAD)
    pod = cold_pod(pool_subject(), oauth_pool(), "py-cold1", binding, images=IMAGES)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[aa.VOLUME]["secret"]["secretName"] == "py-cold1-agent-auth"
    plain = pool_spec(authProxy={"rules": [OPENAI_RULE]})
    pod = warm_pod(pool_subject(), plain, "py-abcde", images=IMAGES)
    assert aa.VOLUME not in {v["name"] for v in pod["spec"]["volumes"]}
    # Pools without an oauthProvider keep the template hash they had (no warm Pod goes
    # stale): their wire form, which the hash covers, gained no key.
    headers = plain.auth_proxy.wire()["rules"][0]["headers"]
    assert headers == OPENAI_RULE["headers"]
    assert template_hash(plain, IMAGES) != template_hash(oauth_pool(), IMAGES)
    with pytest.raises(ValueError, match="needs named Pods"):
        warm_pod(pool_subject(), oauth_pool(), images=IMAGES)


def test_network_policy_lets_the_pod_reach_the_allowed_runtime_servers_only() -> None:
    np = network_policy(
        pool_subject(), oauth_pool(networkPolicy={"allowedDeployments": ["agent", "b"]})
    )
    assert np is not None
    kubernetes_validate.validate(np, "1.36", strict=True)
    [rule] = [
        r for r in np["spec"]["egress"] if r["ports"] == [{"protocol": "TCP", "port": "http"}]
    ]
    [peer] = rule["to"]
    exprs = {e["key"]: e for e in peer["podSelector"]["matchExpressions"]}
    assert exprs["berth.dev/agentdeployment"]["values"] == ["agent", "b"]
    assert exprs["app.kubernetes.io/component"]["values"] == ["server"]
    assert exprs["berth.dev/from-pool"]["operator"] == "DoesNotExist"
    assert "namespaceSelector" not in peer  # this namespace only
    # The runtime's server Pods match the selector (the labels render.meta gives them).
    server = pod_labels(agent_subject(name="agent"), "server")
    assert all(
        (server.get(e["key"]) in e["values"]) if e["operator"] == "In" else e["key"] not in server
        for e in peer["podSelector"]["matchExpressions"]
    )
    plain = network_policy(
        pool_subject(), pool_spec(networkPolicy={"allowedDeployments": ["agent"]})
    )
    assert plain is not None
    assert all(r["ports"] != [{"protocol": "TCP", "port": "http"}] for r in plain["spec"]["egress"])


# --- resolving a claim's deployment --------------------------------------------------------


def test_wanted_only_for_thread_claims_naming_a_deployment_on_oauth_pools() -> None:
    assert aa.wanted(oauth_claim(), oauth_pool())
    assert not aa.wanted(oauth_claim(deploymentRef=None), oauth_pool())
    assert not aa.wanted(
        claim_spec(threadId=None, assistantId="a", deploymentRef={"name": "agent"}), oauth_pool()
    )
    assert not aa.wanted(oauth_claim(), pool_spec(authProxy={"rules": [OPENAI_RULE]}))


def test_resolve_derives_what_the_runtime_checks() -> None:
    r = aa.resolve(oauth_claim(), "ns1", "py", oauth_pool(), deployment(), key_secret())
    assert r.problem == "" and r.files is not None
    assert r.files.token_url == "http://agent.ns1.svc:8123/v2/auth/sandbox/token"
    assert r.files.thread_id == THREAD
    # The runtime's own derivation (BERTH_SANDBOX_TOKEN_KEY is the Secret's text) agrees.
    assert r.files.proxy_token == sandbox_proxy_token(KEY, THREAD)
    assert r.files.proxy_token != sandbox_proxy_token(KEY, str(uuid.uuid4()))
    assert r.files.proxy_token not in repr(r.files)
    upper = aa.resolve(
        oauth_claim(threadId=THREAD.upper()), "ns1", "py", oauth_pool(), deployment(), key_secret()
    )
    assert upper.files is not None and upper.files.thread_id == THREAD  # the runtime's form


@pytest.mark.parametrize(
    ("claim", "pool", "body", "key", "problem"),
    [
        ({"threadId": "t-1"}, {}, deployment(), key_secret(), "threadId 't-1' is not a thread id"),
        ({}, {}, None, key_secret(), "AgentDeployment agent (deploymentRef) not found"),
        (
            {},
            {},
            deployment(sandbox={"pool": "other"}),
            key_secret(),
            "does not claim from SandboxPool py (its spec.sandbox.pool is other)",
        ),
        ({}, {}, deployment(sandbox=None), key_secret(), "its spec.sandbox.pool is unset"),
        (
            {},
            {},
            deployment(agentAuth=None),
            key_secret(),
            "AgentDeployment agent has no spec.agentAuth",
        ),
        (
            {},
            {
                "authProxy": {
                    "rules": [
                        {**CALENDAR_RULE, "headers": [{"name": "A", "oauthProvider": "github"}]}
                    ]
                }
            },
            deployment(),
            key_secret(),
            "injects tokens of oauthProvider github, which AgentDeployment agent does not "
            "configure (its spec.agentAuth providers: calendar)",
        ),
        (
            {},
            {"networkPolicy": {"allowedDeployments": ["other"]}},
            deployment(),
            key_secret(),
            "not in networkPolicy.allowedDeployments of SandboxPool py",
        ),
        (
            {},
            {},
            deployment(),
            None,
            "Secret agent-sandbox-key (key key, the sandbox key of AgentDeployment agent) "
            "is missing",
        ),
        ({}, {}, deployment(), key_secret("short"), "is missing or malformed"),
        ({}, {}, deployment(), {"data": {"key": "%%%"}}, "is missing or malformed"),
        (
            {},
            {},
            {"metadata": {"name": "agent"}, "spec": {"graphs": 1}},
            key_secret(),
            "has an invalid spec",
        ),
    ],
)
def test_resolve_names_what_is_missing(
    claim: dict[str, Any],
    pool: dict[str, Any],
    body: dict[str, Any] | None,
    key: dict[str, Any] | None,
    problem: str,
) -> None:
    r = aa.resolve(oauth_claim(**claim), "ns1", "py", oauth_pool(**pool), body, key)
    assert r.files is None
    assert problem in r.problem


def test_files_secret_is_owned_by_the_pod_and_holds_the_three_files() -> None:
    r = aa.resolve(oauth_claim(), "ns1", "py", oauth_pool(), deployment(), key_secret())
    assert r.files is not None
    pod = {"metadata": {"name": "py-abcde", "namespace": "ns1", "uid": "pod-uid"}}
    secret = aa.files_secret(pod, "c1", "py", r.files)
    kubernetes_validate.validate(secret, "1.36", strict=True)
    assert secret["metadata"]["name"] == "py-abcde-agent-auth"
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Pod", "py-abcde", "pod-uid")
    assert secret["metadata"]["labels"]["berth.dev/claim"] == "c1"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "token-url": "http://agent.ns1.svc:8123/v2/auth/sandbox/token",
        "thread-id": THREAD,
        "proxy-token": sandbox_proxy_token(KEY, THREAD),
    }
    assert aa.secret_holds(secret, r.files)
    other = aa.resolve(
        oauth_claim(), "ns1", "py", oauth_pool(), deployment(), key_secret("ef" * 32)
    )
    assert other.files is not None and not aa.secret_holds(secret, other.files)
    assert not aa.secret_holds(None, r.files)
    assert aa.touch_patch("py-abcde") == {
        "metadata": {"annotations": {"berth.dev/agent-auth-secret": "py-abcde-agent-auth"}}
    }
