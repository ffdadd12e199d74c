"""User-scoped OAuth tokens in a sandbox: the auth proxy injects the thread user's token.

The sandbox network of test_egress_netns.py (netns, berth-netinit, the proxy as UID 1337,
the agent's code as nobody, an HTTPS upstream in a second namespace), plus a veth from the
sandbox namespace to the host, where berth-runtime serves Agent Auth with tokens from a
real Ory Hydra. The proxy's rule names the provider instead of a secret file; the proxy
fetches the token of the thread's user from the runtime with the per-thread proxy token,
and fetches again once it is about to expire: the refreshed token reaches the upstream
without restarting anything. The token is never readable inside the sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from examples.agent_auth import calendar_service
from tests.integration.runtime.conftest import REPO, RuntimeProcess, launch
from tests.integration.runtime.test_agent_auth import (
    ALICE,
    API_KEY,
    BOB,
    TOKEN_TTL_SECONDS,
    _consent,
    _interrupt,
    runtime_env,
)
from tests.support import sandbox_net
from tests.support.hydra import Hydra, hydra_server
from tests.support.sandbox_net import NOBODY, PROXY_UID, SandboxSetup, _owned
from tests.support.servers import Server, create_database, free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="network namespaces and iptables need root (CI runs as root)"
    ),
]

HOST_IP, SANDBOX_SIDE_IP = "198.19.255.1", "198.19.255.2"  # RFC 2544 range, a /30 of our own
SANDBOX_KEY = "k" * 64
CLIENT = Path(__file__).with_name("sandbox_client.py")


def proxy_token(thread_id: str) -> str:
    from berth_runtime.api.agent_auth import sandbox_proxy_token

    return sandbox_proxy_token(SANDBOX_KEY, thread_id)


@pytest.fixture(scope="module")
def hydra(postgres: Server) -> Iterator[Hydra]:
    with hydra_server(postgres.uri, access_token_ttl=f"{TOKEN_TTL_SECONDS}s") as h:
        yield h


@pytest.fixture(scope="module")
def netns() -> Iterator[sandbox_net.Netns]:
    for tool in ("ip", "iptables", "setpriv"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: `make install` (hack/ensure-debs.sh) installs it")
    with sandbox_net.netns_pair() as ns:
        # The runtime's side: a veth from the sandbox namespace to the host (deleted with
        # the namespace). Only the proxy reaches it: berth-netinit sends every other UID's
        # TCP to the proxy, whose allow list does not name this address.
        host_if, sb_if = f"bah{ns.sandbox[-6:]}", f"bas{ns.sandbox[-6:]}"
        sandbox_net.run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", sb_if])
        sandbox_net.run(["ip", "link", "set", sb_if, "netns", ns.sandbox])
        sandbox_net.run(["ip", "addr", "add", f"{HOST_IP}/30", "dev", host_if])
        sandbox_net.run(["ip", "link", "set", host_if, "up"])
        sandbox_net.run(
            ["ip", "-n", ns.sandbox, "addr", "add", f"{SANDBOX_SIDE_IP}/30", "dev", sb_if]
        )
        sandbox_net.run(["ip", "-n", ns.sandbox, "link", "set", sb_if, "up"])
        yield ns


@pytest.fixture(scope="module")
def runtime(
    postgres: Server, redis: Server, hydra: Hydra, netns: sandbox_net.Netns, tmp_path_factory: Any
) -> Iterator[RuntimeProcess]:
    cal_port = free_port()
    cal = calendar_service.serve(cal_port, f"{hydra.admin_url}/admin/oauth2/introspect")
    port = free_port()
    env = runtime_env(hydra, f"http://127.0.0.1:{cal_port}", port, host=HOST_IP)
    env["BERTH_SANDBOX_TOKEN_KEY"] = SANDBOX_KEY
    db = create_database(postgres.uri, f"an_{os.urandom(4).hex()}")
    rp = launch(
        "serve",
        db,
        redis.uri,
        tmp_path_factory.mktemp("agent-auth-netns"),
        extra_env=env,
        config=REPO / "examples" / "agent_auth" / "langgraph.json",
        port=port,
        host=HOST_IP,  # the host end of the veth: reachable from the sandbox namespace
    )
    yield rp
    rp.terminate()
    cal.shutdown()


@pytest.fixture(scope="module")
async def threads(runtime: RuntimeProcess, hydra: Hydra) -> dict[str, str]:
    """alice's thread (consented), bob's thread (never consented)."""
    out: dict[str, str] = {}
    for name, headers in (("alice", ALICE), ("bob", BOB)):
        lg = get_client(url=runtime.url, headers=headers)
        try:
            thread = await lg.threads.create()
            result = await lg.runs.wait(thread["thread_id"], "calendar", input={})
            if name == "alice":
                done = await _consent(hydra, _interrupt(result)["auth_url"], "alice")
                [resumed] = done["resumed_runs"]
                await lg.runs.join(thread["thread_id"], resumed["run_id"])
            out[name] = thread["thread_id"]
        finally:
            await lg.aclose()
    return out


@pytest.fixture(scope="module")
def sandbox(
    netns: sandbox_net.Netns, runtime: RuntimeProcess, threads: dict[str, str]
) -> Iterator[SandboxSetup]:
    def configure(config: dict[str, Any], pdir: Path) -> None:
        # What the operator renders for a rule that names a provider (render.sandbox.proxy,
        # agent_auth.config_block); the three files stand in for the Pod's Secret
        # <pod>-agent-auth that the operator writes when a thread's claim binds it.
        url = f"http://{HOST_IP}:{runtime.port}/v2/auth/sandbox/token"
        _owned(pdir / "token-url", url.encode(), PROXY_UID, 0o600)
        _owned(pdir / "thread-id", threads["alice"].encode(), PROXY_UID, 0o600)
        _owned(pdir / "proxy-token", proxy_token(threads["alice"]).encode(), PROXY_UID, 0o600)
        config["agentAuth"] = {
            "tokenURLFile": str(pdir / "token-url"),
            "threadIdFile": str(pdir / "thread-id"),
            "proxyTokenFile": str(pdir / "proxy-token"),
        }
        config["secretPollSeconds"] = 0.2
        config["rules"].insert(
            0,
            {
                "name": "calendar",
                "hosts": ["api.test"],
                "pathPrefix": "/cal/",
                "headers": [
                    {
                        "name": "Authorization",
                        "value": "Bearer {secret}",
                        "oauthProvider": "calendar",
                    }
                ],
            },
        )

    yield sandbox_net.start_sandbox(netns, configure=configure)


def token_of(runtime: RuntimeProcess, user: str) -> str:
    r = httpx.post(
        f"{runtime.url}/v2/auth/authenticate",
        headers={"x-api-key": API_KEY},
        json={"user_id": user, "provider": "calendar", "scopes": []},
    )
    assert r.json()["status"] == "completed", r.text
    return str(r.json()["token"])


def sandbox_get(setup: SandboxSetup, path: str, look_for: str, scan: bool = True) -> dict[str, Any]:
    """As nobody inside the sandbox: GET https://api.test<path>, then search everything
    readable for `look_for` (given on stdin, so it is in no cmdline)."""
    ns = setup.ns
    client = ns.workdir / "sandbox_client.py"
    shutil.copy(CLIENT, client)
    client.chmod(0o644)
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[3]); "
        "import sandbox_client as c; "
        f"r = c.https_get('api.test', {path!r}, headers={{'Authorization': 'Bearer none'}}); "
        f"print(json.dumps({{'response': r, 'found': c.find_secret() if {scan} else None}}))"
    )
    argv = ns.exec_argv(
        ns.sandbox,
        [
            sandbox_net.system_python(),
            "-c",
            code,
            str(setup.bundle),
            str(ns.workdir),
            str(ns.workdir),
        ],
        uid=NOBODY,
    )
    proc = subprocess.run(
        argv,
        input=look_for + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def upstream_auth(setup: SandboxSetup, path: str) -> list[str]:
    return [
        str(r["headers"].get("Authorization"))  # type: ignore[union-attr]
        for r in sandbox_net.upstream_requests(setup)
        if r["path"] == path
    ]


def test_the_thread_users_token_reaches_the_upstream_and_only_the_proxy(
    sandbox: SandboxSetup, runtime: RuntimeProcess
) -> None:
    token = token_of(runtime, "alice")
    seen = sandbox_get(sandbox, "/cal/events", token)
    assert seen["response"]["status"] == 200, seen
    assert upstream_auth(sandbox, "/cal/events") == [f"Bearer {token}"]
    assert seen["found"] == []  # not in the sandbox's env, files, /proc, or responses
    assert token not in sandbox.audit_log.read_text()
    assert token not in (sandbox.ns.workdir / "proxy.err").read_text()


def test_a_refreshed_token_applies_without_a_restart(
    sandbox: SandboxSetup, runtime: RuntimeProcess
) -> None:
    first = token_of(runtime, "alice")
    sandbox_get(sandbox, "/cal/before", first)
    time.sleep(TOKEN_TTL_SECONDS + 0.5)  # Hydra's access token expired: the runtime refreshes
    seen = sandbox_get(sandbox, "/cal/after", first, scan=False)
    assert seen["response"]["status"] == 200, seen
    second = token_of(runtime, "alice")  # the refreshed token, seconds from its expiry
    assert second != first
    assert upstream_auth(sandbox, "/cal/after") == [f"Bearer {second}"]
    assert sandbox.proxy.poll() is None  # the same proxy process throughout


def test_a_thread_whose_user_never_consented_gets_a_clear_502(
    sandbox: SandboxSetup, threads: dict[str, str]
) -> None:
    pdir = sandbox.ns.workdir / "proxy"
    # The Pod is re-bound to bob's thread: the files change, the proxy follows.
    _owned(pdir / "thread-id", threads["bob"].encode(), PROXY_UID, 0o600)
    _owned(pdir / "proxy-token", proxy_token(threads["bob"]).encode(), PROXY_UID, 0o600)
    time.sleep(0.6)
    try:
        seen = sandbox_get(sandbox, "/cal/bob", "unused-marker")
        assert seen["response"]["status"] == 502, seen
        assert "they have not consented yet" in seen["response"]["body"]
        assert upstream_auth(sandbox, "/cal/bob") == []
        # A proxy token for another thread is refused by the runtime.
        _owned(pdir / "proxy-token", proxy_token(threads["alice"]).encode(), PROXY_UID, 0o600)
        time.sleep(0.6)
        seen = sandbox_get(sandbox, "/cal/forged", "unused-marker")
        assert seen["response"]["status"] == 502 and "wrong proxy token" in seen["response"]["body"]
    finally:
        _owned(pdir / "thread-id", threads["alice"].encode(), PROXY_UID, 0o600)
        _owned(pdir / "proxy-token", proxy_token(threads["alice"]).encode(), PROXY_UID, 0o600)
