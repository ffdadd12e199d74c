"""Agent Auth's pure parts: PKCE, the signed state, the consent URL, token responses,
provider config."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from berth_runtime.agent_auth import flow
from berth_runtime.agent_auth.config import parse_agent_auth, parse_provider
from berth_runtime.agent_auth.crypto import Sealer, sealer_from_env
from berth_runtime.config import ConfigError
from cryptography.fernet import Fernet

NOW = datetime(2026, 1, 1, tzinfo=UTC)
RAW = {
    "authorization_endpoint": "https://idp.test/authorize?tenant=a",
    "token_endpoint": "https://idp.test/token",
    "client_id": "cid",
    "client_secret": "s",
    "scopes": ["offline_access"],
    "redirect_url": "https://agent.test/v2/auth/callback",
}


def test_pkce_follows_rfc7636() -> None:
    p = flow.new_pkce()
    assert 43 <= len(p.verifier) <= 128
    digest = hashlib.sha256(p.verifier.encode()).digest()
    assert p.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert flow.new_pkce().verifier != p.verifier


def test_state_is_bound_to_flow_user_thread_and_run() -> None:
    sealer = Sealer([Fernet.generate_key()])
    b = flow.Binding(uuid.uuid4(), "alice", "cal", ("a", "b"), "t1", "r1")
    state = flow.state_for(b, sealer.mac)
    flow.check_state(state, b, [sealer.mac])
    for other in (
        flow.Binding(b.auth_id, "bob", "cal", ("a", "b"), "t1", "r1"),
        flow.Binding(b.auth_id, "alice", "cal", ("a", "b"), "t2", "r1"),
        flow.Binding(b.auth_id, "alice", "cal", ("a",), "t1", "r1"),
    ):
        with pytest.raises(flow.FlowError, match="signature"):
            flow.check_state(state, other, [sealer.mac])
    with pytest.raises(flow.FlowError, match="does not belong"):
        flow.check_state(
            state, flow.Binding(uuid.uuid4(), "alice", "cal", ("a", "b")), [sealer.mac]
        )
    with pytest.raises(flow.FlowError, match="signature"):
        flow.check_state(state, b, [Sealer([Fernet.generate_key()]).mac])


def test_a_rotated_key_still_verifies_old_states() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    b = flow.Binding(uuid.uuid4(), "alice", "cal", ("a",))
    state = flow.state_for(b, Sealer([old]).mac)
    rotated = Sealer([new, old])
    flow.check_state(state, b, [lambda m, i=i: rotated.mac(m, i) for i in range(2)])
    sealed = Sealer([old]).seal("tok")
    assert rotated.open(rotated.rotate(sealed)) == "tok"
    assert Sealer([new]).open(rotated.rotate(sealed)) == "tok"


def test_authorization_url_keeps_the_endpoints_query() -> None:
    p = parse_provider("cal", RAW, {})
    pkce = flow.Pkce("v" * 43, "c" * 43)
    url = flow.authorization_url(p, ("x", "offline_access"), "st", pkce)
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    assert parts.netloc == "idp.test" and q["tenant"] == ["a"]
    assert q["response_type"] == ["code"] and q["scope"] == ["x offline_access"]
    assert q["code_challenge_method"] == ["S256"] and q["state"] == ["st"]
    assert q["redirect_uri"] == ["https://agent.test/v2/auth/callback"]


def test_token_responses() -> None:
    ts = flow.token_set(
        {"access_token": "secret-at", "expires_in": 60, "refresh_token": "secret-rt"}, NOW, ("s",)
    )
    assert ts.expires_at == NOW + timedelta(seconds=60) and ts.scopes == ("s",)
    assert "secret" not in repr(ts)
    kept = flow.token_set({"access_token": "b", "scope": "x y"}, NOW, ("s",), previous_refresh="r")
    assert kept.refresh_token == "r" and kept.scopes == ("x", "y") and kept.expires_at is None
    with pytest.raises(flow.FlowError, match="invalid_grant: gone"):
        flow.token_set({"error": "invalid_grant", "error_description": "gone"}, NOW, ())
    with pytest.raises(flow.FlowError, match="only Bearer"):
        flow.token_set({"access_token": "a", "token_type": "mac"}, NOW, ())
    assert flow.needs_refresh(NOW + timedelta(seconds=30), NOW, 60)
    assert not flow.needs_refresh(NOW + timedelta(seconds=90), NOW, 60)
    assert not flow.needs_refresh(None, NOW, 60)
    assert flow.covers(("a", "b"), ("a",)) and not flow.covers(("a",), ("a", "b"))
    assert flow.merge_scopes(["x", "y"], ["y", "z"]) == ("x", "y", "z")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"client_id": ""}, "client_id is required"),
        ({"redirect_url": "https://agent.test/other"}, "must end with /v2/auth/callback"),
        ({"token_endpoint": None}, "set 'issuer'"),
        ({"client_secret": None}, "a client secret is required"),
        (
            {"client_secret_env": "NOPE", "client_secret": None},
            r"NOPE \(client secret\) is not set",
        ),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "must be one of"),
        ({"scopes": "a,b c"}, None),
        ({"scopes": [""]}, "list of scope strings"),
        ({"authorize_params": {"state": "x"}}, "cannot set"),
        ({"colour": "red"}, "unknown keys"),
    ],
)
def test_incomplete_providers_are_refused(change: dict[str, object], message: str | None) -> None:
    raw = {k: v for k, v in {**RAW, **change}.items() if v is not None}
    if message is None:
        assert parse_provider("cal", raw, {}).scopes == ("a,b", "c")
        return
    with pytest.raises(ConfigError, match=message):
        parse_provider("cal", raw, {})


def test_env_providers_merge_over_langgraph_json_and_keys_are_required() -> None:
    env = {"BERTH_AGENT_AUTH_PROVIDERS": '{"gh": ' + __import__("json").dumps(RAW) + "}"}
    cfg = parse_agent_auth({"providers": {"cal": RAW}, "consent_ttl_seconds": 60}, env)
    assert cfg is not None and sorted(cfg.providers) == ["cal", "gh"]
    assert cfg.consent_ttl_seconds == 60
    assert parse_agent_auth(None, {}) is None
    with pytest.raises(ConfigError, match="at least one provider"):
        parse_agent_auth({"providers": {}}, {})
    with pytest.raises(ConfigError, match="BERTH_AGENT_AUTH_KEYS is required"):
        sealer_from_env({})
    with pytest.raises(ConfigError, match="not a Fernet key"):
        sealer_from_env({"BERTH_AGENT_AUTH_KEYS": "nope"})
