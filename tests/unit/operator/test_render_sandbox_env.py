"""`spec.sandbox` of an AgentDeployment: schema, validation, the runtime Pods' env and RBAC."""

from __future__ import annotations

from typing import Any

import pytest
from berth_operator.api.crd import build_crd
from berth_operator.api.registry import AGENT_DEPLOYMENT
from berth_operator.render.desired import Observed, decode, render
from berth_operator.render.names import ChildRef
from berth_runtime.sandbox.settings import SandboxSettings, with_env
from pydantic import ValidationError

from tests.unit.operator.factories import IMAGES, PASSWORDS, find, rendered, secret, spec, subject

ROLE = ChildRef("rbac.authorization.k8s.io/v1", "Role", "demo-sandboxes")
BINDING = ChildRef("rbac.authorization.k8s.io/v1", "RoleBinding", "demo-sandboxes")
KEY_SECRET = ChildRef("v1", "Secret", "demo-sandbox-key")


def _env(d: Any, name: str) -> list[dict[str, Any]]:
    deploy = find(d, "Deployment", name)
    env: list[dict[str, Any]] = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def test_no_sandbox_block_renders_no_sandbox_env_and_no_claim_role() -> None:
    d = rendered()
    env = _env(d, "demo-server")
    assert not [e for e in env if e["name"].startswith("BERTH_SANDBOX_")]
    assert ROLE in d.orphans and BINDING in d.orphans  # removed if an earlier spec had one
    assert KEY_SECRET in d.orphans


def test_sandbox_block_grants_the_runtime_its_claims_and_nothing_more() -> None:
    d = rendered(spec(sandbox={"pool": "python"}))
    assert ROLE not in d.orphans and BINDING not in d.orphans
    role = find(d, "Role", "demo-sandboxes")
    assert role["rules"] == [
        {
            "apiGroups": ["berth.dev"],
            "resources": ["sandboxclaims"],
            "verbs": ["get", "list", "watch", "create", "patch", "delete"],
        },
    ]
    # No Secret access at all: the auth proxy's rule Secrets stay out of the runtime's reach.
    assert not [r for r in role["rules"] if "secrets" in r["resources"] or "" in r["apiGroups"]]
    binding = find(d, "RoleBinding", "demo-sandboxes")
    assert binding["roleRef"]["name"] == "demo-sandboxes"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo", "namespace": "ns1"}]
    own = rendered(spec(sandbox={"pool": "python"}, pod={"serviceAccountName": "agents"}))
    assert find(own, "RoleBinding", "demo-sandboxes")["subjects"][0]["name"] == "agents"


def test_sandbox_block_becomes_env_on_server_and_worker_pods() -> None:
    s = spec(
        sandbox={"pool": "python", "scope": "Assistant", "ttlSeconds": 600},
        workers={"enabled": True},
        env=[{"name": "BERTH_SANDBOX_TTL_SECONDS", "value": "30"}],
    )
    d = rendered(s)
    for name in ("demo-server", "demo-worker"):
        env = _env(d, name)
        names = [e["name"] for e in env]
        assert names.index("BERTH_SANDBOX_TTL_SECONDS") < len(names) - 1  # user's comes last
        by_name = {e["name"]: e for e in env[:-1]}
        assert by_name["BERTH_SANDBOX_POOL"]["value"] == "python"
        assert by_name["BERTH_SANDBOX_SCOPE"]["value"] == "assistant"
        assert by_name["BERTH_SANDBOX_TTL_SECONDS"]["value"] == "600"
        assert by_name["BERTH_SANDBOX_READY_TIMEOUT_SECONDS"]["value"] == "60"
        assert by_name["BERTH_SANDBOX_NAMESPACE"]["valueFrom"] == {
            "fieldRef": {"fieldPath": "metadata.namespace"}
        }
        assert by_name["BERTH_SANDBOX_TOKEN_KEY"]["valueFrom"] == {
            "secretKeyRef": {"name": "demo-sandbox-key", "key": "key"}
        }
        # What the runtime reads back from exactly these variables.
        literal = {e["name"]: e["value"] for e in env[:-1] if "value" in e}
        runtime = with_env(SandboxSettings(), {**literal, "BERTH_SANDBOX_NAMESPACE": "ns1"})
        assert (runtime.pool, runtime.scope, runtime.ttl_seconds) == ("python", "assistant", 600)
        assert runtime.namespace == "ns1"


@pytest.mark.parametrize(
    "bad",
    [{"scope": "Thread"}, {"pool": "p", "scope": "thread"}, {"pool": "p", "ttlSeconds": 0}],
)
def test_bad_sandbox_block_is_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        spec(sandbox=bad)


def test_schema_has_the_sandbox_block_with_enum_and_defaults() -> None:
    crd = build_crd(AGENT_DEPLOYMENT)
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    sb = props["properties"]["sandbox"]
    assert sb["required"] == ["pool"]
    assert sb["properties"]["scope"]["enum"] == ["Thread", "Assistant"]
    assert sb["properties"]["scope"]["default"] == "Thread"
    assert sb["properties"]["ttlSeconds"]["default"] == 1800
    assert sb["properties"]["ttlSeconds"]["minimum"] == 1


def test_token_key_secret_is_generated_once_and_never_rotated() -> None:
    s = spec(sandbox={"pool": "python"})
    d = rendered(s)
    assert KEY_SECRET not in d.orphans
    made = find(d, "Secret", "demo-sandbox-key")
    assert made["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert decode(made, "key") == PASSWORDS["sandbox-key"]
    # A live key wins over the fresh random value offered by the caller.
    live = secret("demo-sandbox-key", key="cd" * 32)
    again = render(
        subject(), s, Observed(sandbox_key=live), {**PASSWORDS, "sandbox-key": "x"}, IMAGES
    )
    assert decode(find(again, "Secret", "demo-sandbox-key"), "key") == "cd" * 32
