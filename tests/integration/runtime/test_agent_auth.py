"""Agent Auth against a real OAuth 2.0 / OIDC server (Ory Hydra, built from the Go module
proxy), the example agent served by berth-runtime, langgraph-sdk and langchain-auth as the
clients. Consent is given through Hydra's login/consent admin API, as a login app would."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet, InvalidToken
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from examples.agent_auth import calendar_service
from tests.integration.runtime.conftest import BIN, REPO, RuntimeProcess, launch
from tests.support.hydra import Hydra, hydra_server
from tests.support.servers import Server, create_database, free_port

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "agent_auth"
API_KEY = "agent-auth-test-key"
KEY = Fernet.generate_key().decode()
ALICE = {"Authorization": "Bearer token-alice"}
BOB = {"Authorization": "Bearer token-bob"}
# Access tokens live 4 s at Hydra and are refreshed when 1 s is left: refresh is exercised.
TOKEN_TTL_SECONDS = 4


@pytest.fixture(scope="module")
def hydra(postgres: Server) -> Iterator[Hydra]:
    with hydra_server(postgres.uri, access_token_ttl=f"{TOKEN_TTL_SECONDS}s") as h:
        yield h


@pytest.fixture(scope="module")
def calendar(hydra: Hydra) -> Iterator[str]:
    port = free_port()
    server = calendar_service.serve(port, f"{hydra.admin_url}/admin/oauth2/introspect")
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def runtime_env(
    hydra: Hydra, calendar: str, port: int, host: str = "127.0.0.1", **provider: Any
) -> dict[str, str]:
    redirect = f"http://{host}:{port}/v2/auth/callback"
    client_id, secret = hydra.create_client(redirect)
    spec = {
        "issuer": hydra.issuer,
        "client_id": client_id,
        "client_secret_env": "CALENDAR_CLIENT_SECRET",
        "scopes": ["offline_access"],
        "redirect_url": redirect,
        **provider,
    }
    return {
        "CALENDAR_URL": calendar,
        "CALENDAR_CLIENT_SECRET": secret,
        "BERTH_AGENT_AUTH_KEYS": KEY,
        "BERTH_AGENT_AUTH_API_KEY": API_KEY,
        "BERTH_AGENT_AUTH_PROVIDERS": json.dumps({"calendar": spec}),
        "BERTH_AGENT_AUTH_REFRESH_MARGIN_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def server(
    postgres: Server, redis: Server, hydra: Hydra, calendar: str, tmp_path_factory: Any
) -> Iterator[RuntimeProcess]:
    db = create_database(postgres.uri, f"aa_{os.urandom(4).hex()}")
    port = free_port()
    env = runtime_env(hydra, calendar, port)
    rp = launch(
        "serve",
        db,
        redis.uri,
        tmp_path_factory.mktemp("agent-auth"),
        extra_env=env,
        config=EXAMPLE / "langgraph.json",
        port=port,
    )
    yield rp
    rp.terminate()


@pytest.fixture
async def alice(server: RuntimeProcess) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=server.url, headers=ALICE)
    yield c
    await c.aclose()


@pytest.fixture
async def bob(server: RuntimeProcess) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=server.url, headers=BOB)
    yield c
    await c.aclose()


def _interrupt(out: dict[str, Any]) -> dict[str, Any]:
    [intr] = out["__interrupt__"]
    value: dict[str, Any] = intr["value"]
    return value


async def _callback(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url, headers={"Accept": "application/json"})


async def _consent(hydra: Hydra, auth_url: str, subject: str) -> dict[str, Any]:
    back = hydra.consent(auth_url, subject)
    r = await _callback(back)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _db(server: RuntimeProcess) -> str:
    return server.env["DATABASE_URI"]


def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A short blocking request (the tests' own checks, not what is under test)."""
    with httpx.Client(timeout=30) as http:
        return http.request(method, url, **kwargs)


def _token_of(server: RuntimeProcess, user: str) -> str:
    r = call(
        "POST",
        f"{server.url}/v2/auth/authenticate",
        headers={"x-api-key": API_KEY},
        json={"user_id": user, "provider": "calendar", "scopes": ["calendar.read"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed", r.json()
    return str(r.json()["token"])


async def _ensure_alice_consented(
    server: RuntimeProcess, hydra: Hydra, alice: LangGraphClient
) -> None:
    r = call("GET", f"{server.url}/v2/auth/tokens", headers=ALICE)
    if any(t["provider"] == "calendar" for t in r.json()):
        return
    thread = await alice.threads.create()
    out = await alice.runs.wait(thread["thread_id"], "calendar", input={})
    done = await _consent(hydra, _interrupt(out)["auth_url"], "alice")
    [resumed] = done["resumed_runs"]
    await alice.runs.join(resumed["thread_id"], resumed["run_id"])


async def test_consent_resumes_the_run_and_later_runs_need_none(
    server: RuntimeProcess, hydra: Hydra, calendar: str, alice: LangGraphClient
) -> None:
    thread = await alice.threads.create()
    out = await alice.runs.wait(thread["thread_id"], "calendar", input={"question": "today?"})
    intr = _interrupt(out)
    assert intr["provider"] == "calendar"
    assert intr["scopes"] == ["calendar.read", "offline_access"]
    query = parse_qs(urlsplit(intr["auth_url"]).query)
    assert intr["auth_url"].startswith(f"{hydra.public_url}/oauth2/auth?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [f"{server.url}/v2/auth/callback"]
    assert (await alice.threads.get(thread["thread_id"]))["status"] == "interrupted"

    done = await _consent(hydra, intr["auth_url"], "alice")
    assert done["status"] == "completed" and done["provider"] == "calendar"
    [resumed] = done["resumed_runs"]
    assert resumed["thread_id"] == thread["thread_id"]
    result = await alice.runs.join(thread["thread_id"], resumed["run_id"])
    assert result["answer"] == "alice has: Design review, 1:1 with Bob"

    # A second run (new thread) of the same user needs no consent.
    t2 = await alice.threads.create()
    out2 = await alice.runs.wait(t2["thread_id"], "calendar", input={})
    assert "__interrupt__" not in out2 and out2["answer"].startswith("alice has:")

    calls = call("GET", f"{calendar}/_calls").json()
    assert calls[-1] == {
        "valid": True,
        "sub": "alice",
        "scopes": ["calendar.read", "offline_access"],
    }
    listed = call("GET", f"{server.url}/v2/auth/tokens", headers=ALICE).json()
    assert [t["provider"] for t in listed] == ["calendar"] and listed[0]["refreshable"]
    assert "token" not in listed[0]


async def test_the_token_is_encrypted_and_never_in_checkpoints_events_or_logs(
    server: RuntimeProcess, hydra: Hydra, alice: LangGraphClient
) -> None:
    await _ensure_alice_consented(server, hydra, alice)
    thread = await alice.threads.create()
    raw = b""
    async with httpx.AsyncClient(base_url=server.url, headers=ALICE, timeout=30) as http:
        body = {
            "assistant_id": "calendar",
            "input": {},
            "stream_mode": ["values", "updates", "debug", "tasks", "checkpoints", "events"],
        }
        async with http.stream(
            "POST", f"/threads/{thread['thread_id']}/runs/stream", json=body
        ) as r:
            async for chunk in r.aiter_bytes():
                raw += chunk
    assert b"event: end" in raw and b"alice has:" in raw
    token = _token_of(server, "alice")  # the token the run used (valid for seconds more)
    with psycopg.connect(_db(server)) as conn:
        stored = conn.execute(
            "SELECT access_token FROM agent_auth_token WHERE user_id = 'alice'"
        ).fetchone()
        assert stored is not None
        dumps = {}
        for table in (
            "checkpoints",
            "checkpoint_blobs",
            "checkpoint_writes",
            "run",
            "thread",
            "store",
            "agent_auth_token",
            "agent_auth_flow",
        ):
            rows = conn.execute(f"SELECT t::text FROM {table} t").fetchall()
            dumps[table] = "\n".join(r[0] for r in rows)
            # bytea columns print as hex: look for the hex of the token too
    for table, text in dumps.items():
        assert token not in text, table
        assert token.encode().hex() not in text, table
    # The column holds Fernet ciphertext: readable with the key, not with another one.
    assert Fernet(KEY.encode()).decrypt(bytes(stored[0])).decode() == token
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(bytes(stored[0]))
    assert token.encode() not in raw
    assert token not in server.log()


async def test_a_second_user_never_gets_the_first_users_token(
    server: RuntimeProcess, hydra: Hydra, alice: LangGraphClient, bob: LangGraphClient
) -> None:
    await _ensure_alice_consented(server, hydra, alice)
    thread = await bob.threads.create()
    out = await bob.runs.wait(thread["thread_id"], "calendar", input={})
    intr = _interrupt(out)  # bob is asked for his own consent
    r = call(
        "POST",
        f"{server.url}/v2/auth/authenticate",
        headers={"x-api-key": API_KEY},
        json={"user_id": "bob", "provider": "calendar", "scopes": ["calendar.read"]},
    )
    assert r.json()["status"] == "pending" and "token" not in r.json()
    assert call("GET", f"{server.url}/v2/auth/tokens", headers=BOB).json() == []
    r = call("GET", f"{server.url}/v2/auth/tokens", params={"user_id": "alice"}, headers=BOB)
    assert r.status_code == 403 and "only their own" in r.json()["detail"]
    r = call(
        "DELETE", f"{server.url}/v2/auth/tokens", params={"provider_id": "calendar"}, headers=BOB
    )
    assert r.json()["revoked"] is False
    assert [
        t["provider"] for t in call("GET", f"{server.url}/v2/auth/tokens", headers=ALICE).json()
    ] == ["calendar"]
    # bob consents: his run resumes with his own token and his own calendar.
    done = await _consent(hydra, intr["auth_url"], "bob")
    [resumed] = done["resumed_runs"]
    result = await bob.runs.join(thread["thread_id"], resumed["run_id"])
    assert result["answer"] == "bob has: Dentist"
    assert _token_of(server, "bob") != _token_of(server, "alice")


async def test_an_expiring_token_is_refreshed(
    server: RuntimeProcess, hydra: Hydra, alice: LangGraphClient
) -> None:
    await _ensure_alice_consented(server, hydra, alice)
    first = _token_of(server, "alice")  # may have just been refreshed: a full TTL to go
    # Past its lifetime, with a margin for the provider's whole-second expiry times.
    await asyncio.sleep(TOKEN_TTL_SECONDS + 2)
    assert hydra.introspect(first)["active"] is False  # expired at the provider
    second = _token_of(server, "alice")
    assert second != first and hydra.introspect(second)["active"] is True
    thread = await alice.threads.create()
    out = await alice.runs.wait(thread["thread_id"], "calendar", input={})
    assert out["answer"].startswith("alice has:")
    assert "refreshed the calendar token" in server.log()


async def test_revocation_deletes_and_revokes_at_the_provider(
    server: RuntimeProcess, hydra: Hydra, alice: LangGraphClient
) -> None:
    await _ensure_alice_consented(server, hydra, alice)
    token = _token_of(server, "alice")
    r = call(
        "DELETE", f"{server.url}/v2/auth/tokens", params={"provider_id": "calendar"}, headers=ALICE
    )
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert hydra.introspect(token)["active"] is False
    assert call("GET", f"{server.url}/v2/auth/tokens", headers=ALICE).json() == []
    thread = await alice.threads.create()
    out = await alice.runs.wait(thread["thread_id"], "calendar", input={})
    assert _interrupt(out)["provider"] == "calendar"  # consent again


async def test_a_wrong_state_is_rejected_and_stores_nothing(
    server: RuntimeProcess, hydra: Hydra, bob: LangGraphClient
) -> None:
    r = call(
        "DELETE", f"{server.url}/v2/auth/tokens", params={"provider_id": "calendar"}, headers=BOB
    )
    thread = await bob.threads.create()
    intr = _interrupt(await bob.runs.wait(thread["thread_id"], "calendar", input={}))
    back = hydra.consent(intr["auth_url"], "bob")
    query = parse_qs(urlsplit(back).query)
    state, code = query["state"][0], query["code"][0]
    forged = state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")
    base = f"{server.url}/v2/auth/callback"
    for params, detail in (
        ({"state": forged, "code": code}, "invalid state: state signature does not match"),
        ({"state": "garbage", "code": code}, "invalid state: malformed state"),
        ({"code": code}, "state is missing"),
        ({"state": state}, "code is missing"),
    ):
        r = await _callback(f"{base}?{httpx.QueryParams(params)}")
        assert r.status_code == 400 and r.json()["detail"].startswith(detail), r.text
    r = call("GET", base, params={"state": forged, "code": code})  # a browser gets a page
    assert r.status_code == 400 and "Authorization failed" in r.text
    assert call("GET", f"{server.url}/v2/auth/tokens", headers=BOB).json() == []
    assert (await bob.threads.get(thread["thread_id"]))["status"] == "interrupted"
    # The genuine state still works once, and only once.
    r = await _callback(back)
    assert r.status_code == 200 and r.json()["resumed_runs"]
    r = await _callback(back)
    assert r.status_code == 409 and "already completed" in r.json()["detail"]


async def test_langchain_auth_client_works_unchanged(server: RuntimeProcess, hydra: Hydra) -> None:
    from langchain_auth import Client

    client = Client(api_url=server.url, api_key=API_KEY)
    [provider] = await client.list_oauth_providers()
    assert provider.provider_id == "calendar" and provider.uses_pkce
    assert (
        await client.get_oauth_provider("calendar")
    ).token_url == f"{hydra.public_url}/oauth2/token"

    # Outside a graph: a pending result with the URL, then wait_for_completion.
    result = await client.authenticate(
        provider="calendar", scopes=["calendar.read"], user_id="carol"
    )
    assert result.status == "pending" and result.url and result.auth_id
    await _consent(hydra, result.url, "carol")
    done = await client.wait_for_completion(result.auth_id, timeout=10)
    assert done.status == "completed" and hydra.introspect(done.token or "")["sub"] == "carol"
    again = await client.authenticate(
        provider="calendar", scopes=["calendar.read"], user_id="carol"
    )
    assert again.status == "completed" and again.token

    # Inside a graph (calendar_lc uses langchain_auth.Client): interrupt, consent, resume.
    lg = get_client(url=server.url, headers=BOB)
    try:
        call(
            "DELETE",
            f"{server.url}/v2/auth/tokens",
            params={"provider_id": "calendar"},
            headers=BOB,
        )
        thread = await lg.threads.create()
        out = await lg.runs.wait(thread["thread_id"], "calendar_lc", input={})
        intr = _interrupt(out)
        assert intr["message"] == "OAuth authentication required for provider 'calendar'."
        assert set(intr) == {"message", "auth_url", "provider", "scopes"}
        done_cb = await _consent(hydra, intr["auth_url"], "bob")
        [resumed] = done_cb["resumed_runs"]
        assert resumed["thread_id"] == thread["thread_id"]
        result2 = await lg.runs.join(thread["thread_id"], resumed["run_id"])
        assert result2["answer"] == "bob has: Dentist"
    finally:
        await lg.aclose()

    with pytest.raises(Exception, match="HTTP 401"):
        await Client(api_url=server.url, api_key="wrong").authenticate(
            provider="calendar", scopes=[], user_id="carol"
        )


async def test_bad_input_is_refused_clearly(server: RuntimeProcess, hydra: Hydra) -> None:
    url = f"{server.url}/v2/auth/authenticate"
    key = {"x-api-key": API_KEY}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"user_id": "u", "provider": "nope", "scopes": []}, 404, "unknown provider 'nope'"),
        ({"user_id": "u", "provider": "calendar"}, 422, "scopes is required"),
        ({"user_id": "u", "provider": "calendar", "scopes": "a b"}, 422, "scopes must be a list"),
        ({"provider": "calendar", "scopes": []}, 422, "user_id is required"),
    ]
    with psycopg.connect(_db(server)) as conn:
        before = conn.execute("SELECT count(*) FROM agent_auth_flow").fetchone()
    for body, status, detail in cases:
        r = call("POST", url, json=body, headers=key)
        assert r.status_code == status and detail in r.json()["detail"], (body, r.text)
    r = call("POST", url, json={"user_id": "u", "provider": "calendar", "scopes": []})
    assert r.status_code == 401 and "x-api-key" in r.json()["detail"]
    r = call("POST", f"{server.url}/v2/auth/providers", json={}, headers=key)
    assert r.status_code == 405 and "declared" in r.json()["detail"]
    with psycopg.connect(_db(server)) as conn:
        assert conn.execute("SELECT count(*) FROM agent_auth_flow").fetchone() == before


async def test_refused_and_expired_consent(
    postgres: Server, redis: Server, hydra: Hydra, calendar: str, tmp_path: Path
) -> None:
    config = tmp_path / "langgraph.json"
    example = json.loads((EXAMPLE / "langgraph.json").read_text())
    example["dependencies"] = [str(EXAMPLE)]
    example["graphs"] = {k: str(EXAMPLE / v[2:]) for k, v in example["graphs"].items()}
    example["auth"]["path"] = str(EXAMPLE / "auth.py") + ":auth"
    example["agent_auth"]["consent_ttl_seconds"] = 2
    config.write_text(json.dumps(example))
    port = free_port()
    db = create_database(postgres.uri, f"ab_{os.urandom(4).hex()}")
    rp = launch(
        "serve", db, redis.uri, tmp_path, runtime_env(hydra, calendar, port), config, port=port
    )
    lg = get_client(url=rp.url, headers=ALICE)
    try:
        # The user refuses: the run resumes and fails, naming the cause.
        t1 = await lg.threads.create()
        intr = _interrupt(await lg.runs.wait(t1["thread_id"], "calendar", input={}))
        back = hydra.consent(intr["auth_url"], "alice", deny=True)
        r = await _callback(back)
        assert r.status_code == 400 and "access_denied" in r.json()["detail"]
        for _ in range(100):
            runs = await lg.runs.list(t1["thread_id"])
            if runs[0]["status"] == "error":
                break
            await asyncio.sleep(0.1)
        out = await lg.runs.join(t1["thread_id"], runs[0]["run_id"])
        assert out["__error__"]["error"] == "AgentAuthRunError"
        assert "consent failed: access_denied" in out["__error__"]["message"]

        # Consent given after the flow expired: refused, nothing stored.
        t2 = await lg.threads.create()
        intr = _interrupt(await lg.runs.wait(t2["thread_id"], "calendar", input={}))
        back = hydra.consent(intr["auth_url"], "alice")
        await asyncio.sleep(2.2)
        r = await _callback(back)
        assert r.status_code == 400 and r.json()["detail"].startswith("consent expired")
        with psycopg.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM agent_auth_token").fetchone() == (0,)
        assert (await lg.threads.get(t2["thread_id"]))["status"] == "interrupted"
    finally:
        await lg.aclose()
        rp.terminate()


@pytest.mark.parametrize(
    ("provider", "env", "message"),
    [
        ({"client_id": None}, {}, "agent_auth.providers.calendar.client_id is required"),
        ({"issuer": None}, {}, "set 'issuer' (OIDC discovery) or both"),
        ({"redirect_url": None}, {}, "redirect_url must be a non-empty URL"),
        ({}, {"CALENDAR_CLIENT_SECRET": ""}, "CALENDAR_CLIENT_SECRET (client secret) is not set"),
        ({}, {"BERTH_AGENT_AUTH_KEYS": ""}, "BERTH_AGENT_AUTH_KEYS is required"),
        ({}, {"BERTH_AGENT_AUTH_KEYS": "short"}, "BERTH_AGENT_AUTH_KEYS: not a Fernet key"),
    ],
)
def test_incomplete_config_stops_start_up(
    database_uri: str, provider: dict[str, Any], env: dict[str, str], message: str
) -> None:
    spec = {
        "issuer": "http://127.0.0.1:9/",
        "client_id": "c",
        "client_secret_env": "CALENDAR_CLIENT_SECRET",
        "redirect_url": "http://127.0.0.1:8000/v2/auth/callback",
        **provider,
    }
    full_env = {
        **os.environ,
        "DATABASE_URI": database_uri,
        "CALENDAR_CLIENT_SECRET": "s",
        "BERTH_AGENT_AUTH_KEYS": KEY,
        "BERTH_AGENT_AUTH_PROVIDERS": json.dumps({"calendar": spec}),
        **env,
    }
    proc = subprocess.run(
        [str(BIN), "serve", "--config", str(EXAMPLE / "langgraph.json"), "--port", "0"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
