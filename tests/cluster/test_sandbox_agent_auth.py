"""Agent Auth in sandboxes, operator side, on a real API server (kwok nodes).

A SandboxPool rule header names an ``oauthProvider`` instead of a Secret key. The API server
refuses the malformed forms; the operator renders the proxy's ``agentAuth`` block (files
only), gives every Pod of the pool an optional ``<pod>-agent-auth`` Secret volume mounted
by the auth-proxy container alone, and, when a claim with ``threadId`` and ``deploymentRef``
binds a Pod (warm or cold), writes that Secret: the claiming AgentDeployment's runtime URL,
the thread id and the proxy token the runtime itself derives from the deployment's sandbox
key (checked here with the runtime's own function). A claim the deployment cannot serve is
Stalled with a reason naming the cause and binds nothing. kwok Pods run no containers, so
the proxy reading the files is the e2e tier's (and tests/integration/sandbox's) part.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from berth_runtime.api.agent_auth import sandbox_proxy_token

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    OperatorProcess,
    agent,
    delete_all_agentdeployments,
    external_secrets,
    start_operator,
)
from tests.cluster.sandbox_harness import (
    CLAIM,
    POOL,
    apply,
    berth_crds,
    claim,
    cleanup_sandboxes,
    cond,
    get_json,
    live,
    pods,
    poll,
    pool,
    sandbox_crds,
    wait_claim,
    wait_pool_ready,
    warm_pods,
)

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds", "sandbox_crds"]

THREAD_A = "0b7f3c52-6a8e-4d0b-9f1e-2a3b4c5d6e7f"
THREAD_B = "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
CALENDAR_RULE: dict[str, Any] = {
    "name": "calendar",
    "hosts": ["calendar.example.com"],
    "headers": [{"name": "Authorization", "value": "Bearer {secret}", "oauthProvider": "calendar"}],
}
STATIC_RULE: dict[str, Any] = {
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
PROVIDER: dict[str, Any] = {
    "name": "calendar",
    "issuer": "https://login.example.com/",
    "clientId": "berth",
    "clientSecretRef": {"name": "calendar-oauth", "key": "client-secret"},
    "redirectURL": "https://agent.example.com/v2/auth/callback",
}


def _apply(kubectl: Kubectl, ns: str, body: dict[str, Any]) -> Any:
    return kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body), check=False)


def _header(**fields: Any) -> dict[str, Any]:
    rule = copy.deepcopy(CALENDAR_RULE)
    rule["headers"][0].update(fields)
    rule["headers"][0] = {k: v for k, v in rule["headers"][0].items() if v is not None}
    return rule


NP = {"allowedDeployments": ["agent"]}
REJECTED: list[tuple[str, dict[str, Any], str]] = [
    (
        "secret-and-provider",
        {
            "authProxy": {"rules": [_header(secretRef={"name": "k", "key": "v"})]},
            "networkPolicy": NP,
        },
        "set secretRef (a Secret key) or oauthProvider (the thread user's OAuth token), not both",
    ),
    (
        "neither",
        {"authProxy": {"rules": [_header(oauthProvider=None)]}, "networkPolicy": NP},
        "headers[] needs secretRef (a Secret key) or oauthProvider",
    ),
    (
        "malformed-provider",
        {"authProxy": {"rules": [_header(oauthProvider="Google Calendar!")]}, "networkPolicy": NP},
        "spec.authProxy.rules[0].headers[0].oauthProvider: Invalid value",
    ),
    (
        "explicit-mode",
        {"authProxy": {"rules": [CALENDAR_RULE], "mode": "Explicit"}, "networkPolicy": NP},
        "headers with oauthProvider need authProxy.mode Transparent",
    ),
    (
        "no-allowed-deployments",
        {"authProxy": {"rules": [CALENDAR_RULE]}},
        "headers with oauthProvider need networkPolicy.allowedDeployments",
    ),
]


@pytest.mark.parametrize(("case", "spec", "message"), REJECTED, ids=[c[0] for c in REJECTED])
def test_bad_oauth_rules_are_refused_at_admission(
    sandbox_crds: None,
    kubectl: Kubectl,
    namespace: str,
    case: str,
    spec: dict[str, Any],
    message: str,
) -> None:
    result = _apply(kubectl, namespace, pool("bad", **spec))
    assert result.returncode != 0, f"{case} was accepted"
    assert message in result.stderr, result.stderr


def test_oauth_rules_and_deployment_refs_are_accepted_and_refs_immutable(
    sandbox_crds: None, kubectl: Kubectl, namespace: str
) -> None:
    ok = pool("cal", authProxy={"rules": [CALENDAR_RULE, STATIC_RULE]}, networkPolicy=NP)
    result = _apply(kubectl, namespace, ok)
    assert result.returncode == 0, result.stderr
    unmanaged = pool(
        "cal2", authProxy={"rules": [CALENDAR_RULE]}, networkPolicy={"mode": "Unmanaged"}
    )
    assert _apply(kubectl, namespace, unmanaged).returncode == 0
    body = claim("c1", "cal", threadId=THREAD_A, deploymentRef={"name": "agent"})
    # No operator runs in this test: the claim stays unbound, only admission is checked.
    assert _apply(kubectl, namespace, body).returncode == 0
    for change in ({"name": "other"}, None):
        other = copy.deepcopy(body)
        if change is None:
            del other["spec"]["deploymentRef"]
        else:
            other["spec"]["deploymentRef"] = change
        result = _apply(kubectl, namespace, other)
        assert result.returncode != 0 and "deploymentRef is immutable" in result.stderr
    result = _apply(kubectl, namespace, claim("c2", "cal", deploymentRef={}))
    assert result.returncode != 0 and "spec.deploymentRef.name: Required value" in result.stderr


# --- the operator ----------------------------------------------------------------------------


@pytest.fixture
def operator_with_agent(
    sandbox_crds: None, kube_env: dict[str, str], kubectl: Kubectl, namespace: str
) -> Iterator[OperatorProcess]:
    """The operator, an AgentDeployment ``agent`` with Agent Auth claiming from pool ``cal``,
    and its sandbox key Secret (generated by the operator)."""
    op = start_operator(kube_env, namespace)
    try:
        external_secrets(kubectl, namespace)
        apply(
            kubectl,
            namespace,
            *(
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n}, "stringData": d}
                for n, d in (
                    ("agent-auth", {"keys": "x" * 43 + "="}),
                    ("calendar-oauth", {"client-secret": "s"}),
                )
            ),
        )
        apply(
            kubectl,
            namespace,
            agent(
                "agent",
                sandbox={"pool": "cal"},
                service={"port": 8123},
                agentAuth={
                    "keysSecretRef": {"name": "agent-auth", "key": "keys"},
                    "providers": [PROVIDER],
                },
            ),
        )
        poll(lambda: _secret(kubectl, namespace, "agent-sandbox-key"), 60, "the sandbox key Secret")
        yield op
    finally:
        cleanup_sandboxes(kubectl, namespace)
        delete_all_agentdeployments(kubectl, namespace)
        op.stop()


def _secret(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str] | None:
    got = kubectl("get", "secret", name, "-n", namespace, "-o", "json", check=False)
    if got.returncode != 0:
        return None
    body = json.loads(got.stdout)
    data = {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}
    data["__owners__"] = json.dumps(body["metadata"].get("ownerReferences") or [])
    return data


def _pod(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return get_json(kubectl, namespace, "pod", name)


def _check_files(kubectl: Kubectl, namespace: str, pod_name: str, thread: str, key: str) -> None:
    """The Pod's Agent Auth Secret holds what the runtime checks; only the proxy mounts it."""
    secret = poll(
        lambda: _secret(kubectl, namespace, f"{pod_name}-agent-auth"), 30, f"{pod_name}-agent-auth"
    )
    pod = poll(
        lambda: (
            p
            if (p := _pod(kubectl, namespace, pod_name))["metadata"]
            .get("annotations", {})
            .get("berth.dev/agent-auth-secret")
            else None
        ),
        30,
        "the Pod's agent-auth annotation",
    )
    assert pod["metadata"]["annotations"]["berth.dev/agent-auth-secret"] == f"{pod_name}-agent-auth"
    assert secret["token-url"] == f"http://agent.{namespace}.svc:8123/v2/auth/sandbox/token"
    assert secret["thread-id"] == thread
    assert secret["proxy-token"] == sandbox_proxy_token(key, thread)
    [owner] = json.loads(secret["__owners__"])
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Pod", pod_name, pod["metadata"]["uid"])
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["berth-agent-auth"]["secret"]["secretName"] == f"{pod_name}-agent-auth"
    assert volumes["berth-agent-auth"]["secret"]["optional"] is True
    mounted_by = [
        c["name"]
        for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
        if any(m["name"] == "berth-agent-auth" for m in c.get("volumeMounts", ()))
    ]
    assert mounted_by == ["auth-proxy"]
    sandbox = next(c for c in pod["spec"]["containers"] if c["name"] == "sandbox")
    assert "proxy-token" not in json.dumps(sandbox) and secret["proxy-token"] not in json.dumps(pod)


def test_a_thread_claim_gives_only_the_proxy_its_runtime_thread_and_proxy_token(
    operator_with_agent: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    key = _secret(kubectl, namespace, "agent-sandbox-key")
    assert key is not None
    apply(
        kubectl,
        namespace,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}, "stringData": {"v": "x"}},
        pool(
            "cal",
            replicas=0,
            max_size=4,
            authProxy={"rules": [CALENDAR_RULE, STATIC_RULE]},
            networkPolicy=NP,
        ),
    )
    wait_pool_ready(kubectl, namespace, "cal", 0)
    config = json.loads(
        get_json(kubectl, namespace, "configmap", "cal-auth-proxy")["data"]["config.json"]
    )
    assert config["agentAuth"] == {
        "tokenURLFile": "/berth/agent-auth/token-url",
        "threadIdFile": "/berth/agent-auth/thread-id",
        "proxyTokenFile": "/berth/agent-auth/proxy-token",
    }
    calendar = next(r for r in config["rules"] if r["name"] == "calendar")
    assert calendar["headers"] == [
        {"name": "Authorization", "value": "Bearer {secret}", "oauthProvider": "calendar"}
    ]
    policy = get_json(kubectl, namespace, "networkpolicy", "cal-sandbox")
    assert any(
        r.get("ports") == [{"protocol": "TCP", "port": "http"}] for r in policy["spec"]["egress"]
    )

    # Cold: the pool has no warm Pod.
    apply(
        kubectl, namespace, claim("cold", "cal", threadId=THREAD_A, deploymentRef={"name": "agent"})
    )
    body = wait_claim(kubectl, namespace, "cold")
    assert body["status"]["launchType"] == "cold"
    _check_files(kubectl, namespace, body["status"]["podName"], THREAD_A, key["key"])

    # Warm: a warm Pod (its optional Secret absent) is adopted, then gets its Secret.
    kubectl("scale", POOL, "cal", "-n", namespace, "--replicas=1")
    wait_pool_ready(kubectl, namespace, "cal", 1)
    [warm] = warm_pods(kubectl, namespace, "cal")
    warm_name = warm["metadata"]["name"]
    assert _secret(kubectl, namespace, f"{warm_name}-agent-auth") is None
    apply(
        kubectl, namespace, claim("warm", "cal", threadId=THREAD_B, deploymentRef={"name": "agent"})
    )
    body = wait_claim(kubectl, namespace, "warm")
    assert (body["status"]["launchType"], body["status"]["podName"]) == ("warm", warm_name)
    _check_files(kubectl, namespace, warm_name, THREAD_B, key["key"])

    # An assistant claim (no thread) binds without any Agent Auth Secret.
    apply(
        kubectl, namespace, claim("asst", "cal", assistantId="a1", deploymentRef={"name": "agent"})
    )
    body = wait_claim(kubectl, namespace, "asst")
    assert _secret(kubectl, namespace, f"{body['status']['podName']}-agent-auth") is None

    # Deleting a claim deletes its Pod, and the garbage collector the Pod's Secret.
    kubectl("delete", CLAIM, "warm", "-n", namespace)
    poll(
        lambda: _secret(kubectl, namespace, f"{warm_name}-agent-auth") is None,
        60,
        "GC of the Secret",
    )


def test_a_claim_its_deployment_cannot_serve_is_stalled_and_binds_nothing(
    operator_with_agent: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        pool("cal", replicas=1, max_size=4, authProxy={"rules": [CALENDAR_RULE]}, networkPolicy=NP),
    )
    wait_pool_ready(kubectl, namespace, "cal", 1)
    cases = [
        (
            claim("missing", "cal", threadId=THREAD_A, deploymentRef={"name": "nope"}),
            "AgentDeployment nope (deploymentRef) not found",
        ),
        (
            claim("notuuid", "cal", threadId="t-1", deploymentRef={"name": "agent"}),
            "threadId 't-1' is not a thread id (a UUID)",
        ),
    ]
    for body, message in cases:
        apply(kubectl, namespace, body)
        got = wait_claim(kubectl, namespace, body["metadata"]["name"], "AgentAuthUnavailable")
        assert cond(got, "Stalled")["status"] == "True"
        assert message in cond(got, "Ready")["message"]
        assert "podName" not in got["status"]
    # The deployment stops configuring the pool's provider: new claims say which is missing.
    kubectl(
        "patch",
        "agentdeployment",
        "agent",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps(
            [{"op": "replace", "path": "/spec/agentAuth/providers/0/name", "value": "mail"}]
        ),
    )
    apply(
        kubectl,
        namespace,
        claim("unknown", "cal", threadId=THREAD_A, deploymentRef={"name": "agent"}),
    )
    got = wait_claim(kubectl, namespace, "unknown", "AgentAuthUnavailable")
    assert (
        "SandboxPool cal injects tokens of oauthProvider calendar, which AgentDeployment agent "
        "does not configure (its spec.agentAuth providers: mail)"
    ) in cond(got, "Ready")["message"]
    # Nothing was bound: the warm Pod is still the pool's, and no Agent Auth Secret exists.
    assert len(warm_pods(kubectl, namespace, "cal")) == 1
    assert live(pods(kubectl, namespace, "berth.dev/claim")) == []
    secrets = get_json(kubectl, namespace, "secrets")["items"]
    assert not [s for s in secrets if s["metadata"]["name"].endswith("-agent-auth")]
    # Fixed: the provider is back, and the stalled claim binds (it is retried).
    kubectl(
        "patch",
        "agentdeployment",
        "agent",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps(
            [{"op": "replace", "path": "/spec/agentAuth/providers/0/name", "value": "calendar"}]
        ),
    )
    got = wait_claim(kubectl, namespace, "unknown", timeout=60)
    assert got["status"]["podName"]


async def test_the_runtime_names_its_deployment_in_new_claims(
    sandbox_crds: None, kubectl: Kubectl, namespace: str, api_client: Any
) -> None:
    """The runtime's claim client (what ``BERTH_DEPLOYMENT_NAME`` feeds) sets deploymentRef."""
    from berth_runtime.sandbox.claims import SandboxClaims

    client = SandboxClaims(api_client)
    made = await client.ensure_claim(
        namespace, "cal", thread_id=THREAD_A, token_key="5a" * 32, deployment="agent"
    )
    body = get_json(kubectl, namespace, CLAIM, made.name)
    assert body["spec"]["deploymentRef"] == {"name": "agent"}
    assert body["spec"]["threadId"] == THREAD_A
    bare = await client.ensure_claim(namespace, "cal", assistant_id="a1", token_key="5a" * 32)
    assert "deploymentRef" not in get_json(kubectl, namespace, CLAIM, bare.name)["spec"]
