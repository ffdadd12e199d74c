"""Derived executor tokens and the 401 grace window after binding.

The grace tests talk to a tiny in-test HTTP server that refuses the first N calls with 401,
like an executor whose downwardAPI token file kubelet has not refreshed yet: they test the
backend's retry logic, not the executor (tests/integration covers the real one).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from berth_runtime.config import ConfigError
from berth_runtime.sandbox.backend import ExecutorBackend, ExecutorError
from berth_runtime.sandbox.claims import (
    ClaimFailed,
    _claim_of,
    _token_of,
    derive_token,
    token_sha256,
)
from berth_runtime.sandbox.provider import resolver_for
from berth_runtime.sandbox.resolvers import (
    ClaimResolver,
    SandboxUnavailable,
    ScopeKey,
    rfc3339,
    token_grace,
)
from berth_runtime.sandbox.settings import SandboxSettings, with_env

KEY = "0123456789abcdef" * 4


@dataclass
class Refusing:
    """State of the fake executor: refuse `refuse` calls with 401, then answer exec."""

    refuse: int
    calls: int = 0
    url: str = ""


@pytest.fixture
def refusing() -> Iterator[Refusing]:
    state = Refusing(refuse=0)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                state.calls += 1
                refused = state.calls <= state.refuse
            status, body = (
                (401, {"detail": "invalid executor token"})
                if refused
                else (200, {"output": "ok\n", "exitCode": 0, "truncated": False})
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# -- the grace window ---------------------------------------------------------------------------


async def test_fresh_sandbox_retries_401_until_the_token_file_is_refreshed(
    refusing: Refusing,
) -> None:
    refusing.refuse = 3
    backend = ExecutorBackend(refusing.url, "tok", token_grace=60)
    assert backend.in_token_grace
    result = await backend.aexecute("true")
    assert (result.output, result.exit_code) == ("ok\n", 0)
    assert refusing.calls == 4
    # The first accepted call ends the window: a later 401 is a real token failure, at once.
    assert not backend.in_token_grace
    refusing.refuse, refusing.calls = 1, 0
    with pytest.raises(ExecutorError, match="HTTP 401"):
        await backend.aexecute("true")
    assert refusing.calls == 1
    await backend.aclose()


def test_sync_calls_retry_in_the_grace_window_too(refusing: Refusing) -> None:
    refusing.refuse = 2
    backend = ExecutorBackend(refusing.url, "tok", token_grace=60)
    assert backend.execute("true").exit_code == 0
    assert refusing.calls == 3
    backend.close()


async def test_without_grace_a_401_fails_at_once(refusing: Refusing) -> None:
    refusing.refuse = 5
    backend = ExecutorBackend(refusing.url, "tok")
    with pytest.raises(ExecutorError, match="HTTP 401: invalid executor token"):
        await backend.aexecute("true")
    assert refusing.calls == 1
    await backend.aclose()


async def test_grace_window_ends_after_its_seconds(refusing: Refusing) -> None:
    refusing.refuse = 10_000
    backend = ExecutorBackend(refusing.url, "tok", token_grace=1.0)
    started = time.monotonic()
    with pytest.raises(ExecutorError, match="HTTP 401"):
        await backend.aexecute("true")
    took = time.monotonic() - started
    assert 0.9 <= took < 20  # generous: the box is shared
    assert refusing.calls >= 2
    assert not backend.in_token_grace
    await backend.aclose()


async def test_concurrent_calls_share_the_window(refusing: Refusing) -> None:
    refusing.refuse = 4
    backend = ExecutorBackend(refusing.url, "tok", token_grace=60)
    results = await asyncio.gather(*(backend.aexecute("true") for _ in range(3)))
    assert [r.exit_code for r in results] == [0, 0, 0]
    await backend.aclose()


def test_grace_counts_from_binding() -> None:
    now = 1_000_000.0
    assert token_grace(rfc3339(now - 30), 90, now) == pytest.approx(60)
    assert token_grace(rfc3339(now - 300), 90, now) == 0  # long bound: no grace
    assert token_grace(rfc3339(now + 5), 90, now) == 90  # clock skew: never more than wait
    assert token_grace("", 90, now) == 90  # unknown: the whole wait
    assert token_grace(rfc3339(now), 0, now) == 0  # disabled


# -- derived tokens ----------------------------------------------------------------------------


def _body(name: str, digest: str | None) -> dict[str, object]:
    spec: dict[str, object] = {"poolRef": {"name": "py"}}
    if digest is not None:
        spec["executorTokenSHA256"] = digest
    return {"metadata": {"namespace": "ns", "name": name, "uid": "u"}, "spec": spec}


def test_token_is_hmac_of_the_claim_name_and_the_same_on_every_replica() -> None:
    token = derive_token(KEY, "py-t-1")
    assert token == hmac.new(KEY.encode(), b"py-t-1", hashlib.sha256).hexdigest()
    assert token == derive_token(KEY.encode(), "py-t-1")
    assert token != derive_token(KEY, "py-t-2") and token != derive_token("x" * 64, "py-t-1")
    assert token_sha256(token) == hashlib.sha256(token.encode()).hexdigest()
    with pytest.raises(ValueError, match="at least 32"):
        derive_token("short", "py-t-1")


def test_claim_with_the_keys_hash_carries_its_token() -> None:
    token = derive_token(KEY, "c1")
    claim = _claim_of(_body("c1", token_sha256(token)), "py", KEY)
    assert claim.token_sha256 == token_sha256(token)
    assert _token_of(claim) == token
    assert token not in repr(claim)


def test_claim_without_hash_fails_naming_the_field_instead_of_reading_a_secret() -> None:
    claim = _claim_of(_body("c1", None), "py", KEY)
    with pytest.raises(ClaimFailed, match=r"spec\.executorTokenSHA256") as err:
        _token_of(claim)
    assert err.value.reason == "NoExecutorTokenSHA256"
    assert "c1-executor" in str(err.value)


def test_claim_made_under_another_key_is_a_mismatch() -> None:
    other = token_sha256(derive_token("y" * 64, "c1"))
    with pytest.raises(ClaimFailed) as err:
        _token_of(_claim_of(_body("c1", other), "py", KEY))
    assert err.value.reason == "TokenMismatch"
    assert "BERTH_SANDBOX_TOKEN_KEY" in str(err.value)


# -- settings --------------------------------------------------------------------------------


def test_token_key_and_wait_come_from_the_environment() -> None:
    s = with_env(
        SandboxSettings(),
        {
            "BERTH_SANDBOX_POOL": "py",
            "BERTH_SANDBOX_TOKEN_KEY": KEY,
            "BERTH_SANDBOX_TOKEN_WAIT_SECONDS": "0",
        },
    )
    assert (s.token_key, s.token_wait_seconds) == (KEY, 0)
    assert KEY not in repr(s)
    assert with_env(SandboxSettings(), {}).token_wait_seconds == 90
    resolver = resolver_for(s)
    assert isinstance(resolver, ClaimResolver)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BERTH_SANDBOX_TOKEN_KEY": "short"}, "at least 32 characters"),
        ({"BERTH_SANDBOX_TOKEN_WAIT_SECONDS": "-1"}, ">= 0"),
        ({"BERTH_SANDBOX_TOKEN_WAIT_SECONDS": "soon"}, "number of seconds"),
    ],
)
def test_bad_token_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        with_env(SandboxSettings(), env)


async def test_claim_resolver_without_a_key_says_which_variable() -> None:
    resolver = ClaimResolver("ns", "py", 5, claims=object())
    with pytest.raises(SandboxUnavailable, match="BERTH_SANDBOX_TOKEN_KEY"):
        await resolver.acquire(ScopeKey("thread", "t-1"))
