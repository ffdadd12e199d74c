"""spec.agentAuth: incomplete providers refused, rendered as the runtime's env (secrets by
reference only)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.operator.factories import find, rendered, spec

PROVIDER: dict[str, Any] = {
    "name": "calendar",
    "issuer": "https://login.example.com/",
    "clientId": "berth",
    "clientSecretRef": {"name": "calendar-oauth", "key": "client-secret"},
    "scopes": ["calendar.read"],
    "redirectURL": "https://agent.example.com/v2/auth/callback",
}


def agent_auth(**provider: Any) -> dict[str, Any]:
    return {
        "agentAuth": {
            "keysSecretRef": {"name": "agent-auth", "key": "keys"},
            "apiKeySecretRef": {"name": "agent-auth", "key": "api-key"},
            "providers": [{**PROVIDER, **provider}],
        }
    }


def test_providers_become_runtime_env_with_secrets_by_reference() -> None:
    d = rendered(spec(**agent_auth()))
    container = find(d, "Deployment", "demo-server")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["BERTH_AGENT_AUTH_KEYS"]["valueFrom"] == {
        "secretKeyRef": {"name": "agent-auth", "key": "keys"}
    }
    assert env["BERTH_AGENT_AUTH_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "api-key"
    assert env["BERTH_AGENT_AUTH_CLIENT_SECRET_0"]["valueFrom"] == {
        "secretKeyRef": {"name": "calendar-oauth", "key": "client-secret"}
    }
    providers = json.loads(env["BERTH_AGENT_AUTH_PROVIDERS"]["value"])
    assert providers == {
        "calendar": {
            "issuer": "https://login.example.com/",
            "client_id": "berth",
            "client_secret_env": "BERTH_AGENT_AUTH_CLIENT_SECRET_0",
            "scopes": ["calendar.read"],
            "redirect_url": "https://agent.example.com/v2/auth/callback",
            "token_endpoint_auth_method": "client_secret_basic",
        }
    }


def test_the_rendered_providers_parse_in_the_runtime() -> None:
    from berth_runtime.agent_auth.config import parse_agent_auth

    d = rendered(spec(**agent_auth()))
    container = find(d, "Deployment", "demo-server")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "from-secret") for e in container["env"]}
    cfg = parse_agent_auth(None, env)
    assert cfg is not None and cfg.providers["calendar"].client_secret == "from-secret"


def test_no_agent_auth_renders_nothing() -> None:
    container = find(rendered(), "Deployment", "demo-server")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert not any(e["name"].startswith("BERTH_AGENT_AUTH") for e in container["env"])


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ({"issuer": None}, r"set issuer \(OIDC discovery\) or both"),
        ({"issuer": None, "authorizationEndpoint": "https://x/a"}, "set issuer"),
        ({"clientSecretRef": None}, "clientSecretRef is required"),
        ({"redirectURL": "https://agent.example.com/cb"}, "redirectURL must be"),
        ({"redirectURL": None}, "redirectURL"),
        ({"clientId": None}, "clientId"),
        ({"issuer": "not a url"}, "issuer"),
    ],
)
def test_incomplete_providers_are_refused(provider: dict[str, Any], message: str) -> None:
    fields = agent_auth(**provider)
    p = fields["agentAuth"]["providers"][0]
    for k in [k for k, v in p.items() if v is None]:
        del p[k]
    with pytest.raises(ValidationError, match=message):
        spec(**fields)


def test_a_public_client_needs_no_secret() -> None:
    s = spec(**agent_auth(clientSecretRef=None, tokenEndpointAuthMethod="none"))
    assert s.agent_auth is not None and s.agent_auth.providers[0].client_secret_ref is None


def test_keys_are_required() -> None:
    fields = agent_auth()
    del fields["agentAuth"]["keysSecretRef"]
    with pytest.raises(ValidationError, match="keysSecretRef"):
        spec(**fields)
