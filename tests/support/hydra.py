"""Ory Hydra, a real OAuth 2.0 / OpenID Connect server, for the Agent Auth tests.

Built from the Go module proxy by `hack/build-hydra.sh` (cached), run on the tests' Postgres
(its own database) with `serve all --dev` (plain HTTP on loopback). Hydra leaves login and
consent to an app of ours: `consent()` plays that app and the user's browser, through
Hydra's admin API (accept login, accept consent) and its public endpoints, with cookies,
following the redirects until Hydra sends the browser to the client's redirect URL.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.support.servers import create_database, free_port

REPO = Path(__file__).resolve().parents[2]


def hydra_binary() -> str:
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "build-hydra.sh")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


@dataclass
class Hydra:
    public_url: str
    admin_url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def issuer(self) -> str:
        return self.public_url + "/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def create_client(
        self,
        redirect_uri: str,
        scope: str = "openid offline_access calendar.read calendar.write",
        client_id: str | None = None,
    ) -> tuple[str, str]:
        """An OAuth client for authorization_code + refresh_token; returns (id, secret)."""
        secret = secrets.token_urlsafe(24)
        body: dict[str, Any] = {
            "client_secret": secret,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": scope,
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "client_secret_basic",
        }
        if client_id:
            body["client_id"] = client_id
        r = httpx.post(f"{self.admin_url}/admin/clients", json=body, timeout=10)
        r.raise_for_status()
        return str(r.json()["client_id"]), secret

    def introspect(self, token: str) -> dict[str, Any]:
        r = httpx.post(
            f"{self.admin_url}/admin/oauth2/introspect", data={"token": token}, timeout=10
        )
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out

    def consent(
        self,
        auth_url: str,
        subject: str,
        grant_scopes: list[str] | None = None,
        deny: bool = False,
    ) -> str:
        """Walk the browser through Hydra's login and consent for `subject`; returns the URL
        Hydra redirects to at the end (the client's redirect URL with code and state, not
        fetched)."""
        with httpx.Client(timeout=10) as browser:
            url = auth_url
            for _ in range(12):
                r = browser.get(url)
                if r.status_code not in (302, 303):
                    raise AssertionError(f"Hydra answered {r.status_code} at {url}: {r.text}")
                url = urljoin(url, r.headers["location"])
                query = parse_qs(urlsplit(url).query)
                if "login_challenge" in query:
                    url = self._accept("login", query["login_challenge"][0], {"subject": subject})
                elif "consent_challenge" in query:
                    challenge = query["consent_challenge"][0]
                    if deny:
                        url = self._reject("consent", challenge)
                        continue
                    request = httpx.get(
                        f"{self.admin_url}/admin/oauth2/auth/requests/consent",
                        params={"consent_challenge": challenge},
                        timeout=10,
                    ).json()
                    scopes = grant_scopes or request["requested_scope"]
                    url = self._accept("consent", challenge, {"grant_scope": scopes})
                elif not url.startswith(self.public_url):
                    return url
            raise AssertionError("too many redirects through Hydra")

    def _accept(self, kind: str, challenge: str, body: dict[str, Any]) -> str:
        r = httpx.put(
            f"{self.admin_url}/admin/oauth2/auth/requests/{kind}/accept",
            params={f"{kind}_challenge": challenge},
            json=body,
            timeout=10,
        )
        r.raise_for_status()
        return str(r.json()["redirect_to"])

    def _reject(self, kind: str, challenge: str) -> str:
        r = httpx.put(
            f"{self.admin_url}/admin/oauth2/auth/requests/{kind}/reject",
            params={f"{kind}_challenge": challenge},
            json={"error": "access_denied", "error_description": "the user said no"},
            timeout=10,
        )
        r.raise_for_status()
        return str(r.json()["redirect_to"])


@contextlib.contextmanager
def hydra_server(
    postgres_uri: str, access_token_ttl: str = "1h", env: dict[str, str] | None = None
) -> Iterator[Hydra]:
    binary = hydra_binary()
    db = create_database(postgres_uri, f"hydra_{secrets.token_hex(4)}")
    dsn = db + ("&" if "?" in db else "?") + "sslmode=disable"
    workdir = Path(tempfile.mkdtemp(prefix="berth-hydra-"))
    public, admin = free_port(), free_port()
    hydra_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("URLS_", "SERVE_", "DSN"))},
        "DSN": dsn,
        "URLS_SELF_ISSUER": f"http://127.0.0.1:{public}/",
        # Login and consent "apps" live at addresses nothing listens on: consent() reads the
        # challenges from the redirects and answers through the admin API.
        "URLS_LOGIN": "http://127.0.0.1:9/login",
        "URLS_CONSENT": "http://127.0.0.1:9/consent",
        "SECRETS_SYSTEM": secrets.token_hex(16),
        "SERVE_PUBLIC_PORT": str(public),
        "SERVE_PUBLIC_HOST": "127.0.0.1",
        "SERVE_ADMIN_PORT": str(admin),
        "SERVE_ADMIN_HOST": "127.0.0.1",
        "TTL_ACCESS_TOKEN": access_token_ttl,
        "STRATEGIES_ACCESS_TOKEN": "opaque",
        "LOG_LEVEL": "warn",
        **(env or {}),
    }
    subprocess.run(
        [binary, "migrate", "sql", "up", "-e", "--yes"],
        env=hydra_env,
        check=True,
        capture_output=True,
    )
    log_path = workdir / "hydra.log"
    proc = subprocess.Popen(
        [binary, "serve", "all", "--dev"],
        env=hydra_env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    hydra = Hydra(f"http://127.0.0.1:{public}", f"http://127.0.0.1:{admin}", proc, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"hydra exited early:\n{hydra.log()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f"{hydra.public_url}/health/ready", timeout=1).status_code == 200
                    and httpx.get(f"{hydra.admin_url}/health/ready", timeout=1).status_code == 200
                ):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"hydra not ready:\n{hydra.log()[-3000:]}")
            time.sleep(0.1)
        yield hydra
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
