"""End to end: a sandbox Pod's egress path, built from Linux network namespaces.

The "sandbox" namespace gets berth-netinit's iptables rules and the auth proxy running
as UID 1337; an unprivileged process (nobody) there plays the agent's code; a veth pair
leads to an "upstream" namespace with an HTTPS server and its own CA standing in for an
API. Shows: the injected header reaches the upstream; the sandbox finds the secret
nowhere; a denied host gets a 403 naming the missing rule; a connection that ignores
proxy settings is still redirected; passthrough shows the upstream's own certificate;
the metadata address is denied; the proxy's admin port is unreachable from outside.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import sandbox_net
from tests.support.sandbox_net import NOBODY, SANDBOX_IP, SandboxSetup

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="network namespaces and iptables need root (CI runs as root)"
    ),
]

CLIENT = Path(__file__).with_name("sandbox_client.py")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxSetup]:
    for tool in ("ip", "iptables", "setpriv"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: `make install` (hack/ensure-debs.sh) installs it")
    with sandbox_net.netns_pair() as ns:
        yield sandbox_net.start_sandbox(ns)


@pytest.fixture(scope="module")
def report(sandbox: SandboxSetup) -> dict[str, object]:
    ns = sandbox.ns
    client = ns.workdir / "sandbox_client.py"
    shutil.copy(CLIENT, client)
    client.chmod(0o644)
    argv = ns.exec_argv(
        ns.sandbox,
        [sandbox_net.system_python(), str(client), str(sandbox.bundle), str(ns.workdir)],
        uid=NOBODY,
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    proc = subprocess.run(
        argv, input=sandbox.secret + "\n", capture_output=True, text=True, timeout=240, env=env
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _get(report: dict[str, object], key: str) -> dict[str, object]:
    value = report[key]
    assert isinstance(value, dict), value
    return value


def test_runs_unprivileged(report: dict[str, object]) -> None:
    assert report["uid"] == NOBODY


def test_injected_header_reaches_upstream(sandbox: SandboxSetup, report: dict[str, object]) -> None:
    injected = _get(report, "injected")
    assert injected.get("status") == 200, injected
    assert "auth-ok=True" in str(injected["body"])
    assert injected["issuer"] == "berth test pool CA"  # intercepted with a minted leaf
    requests = {str(r["path"]): r for r in sandbox_net.upstream_requests(sandbox)}
    headers = requests["/v1/chat"]["headers"]
    assert isinstance(headers, dict)
    assert headers["Authorization"] == f"Bearer {sandbox.secret}"
    # Outside the rule's pathPrefix nothing is injected.
    outside = _get(report, "outside_prefix")
    assert outside.get("status") == 200 and "auth-ok=False" in str(outside["body"]), outside


def test_secret_is_nowhere_in_the_sandbox(sandbox: SandboxSetup, report: dict[str, object]) -> None:
    assert report["secret_found_in"] == []
    audit = sandbox.audit_log.read_text(encoding="utf-8")
    assert sandbox.secret not in audit
    assert sandbox.secret not in (sandbox.ns.workdir / "proxy.err").read_text(encoding="utf-8")


def test_denied_host_gets_403_naming_the_rule(report: dict[str, object]) -> None:
    denied = _get(report, "denied")
    assert denied.get("status") == 403, denied
    body = str(denied["body"])
    assert "evil.test" in body and "allow.hosts" in body
    explicit = _get(report, "explicit_denied")
    assert "403" in json.dumps(explicit), explicit  # the CONNECT is refused


def test_direct_connection_is_still_redirected(report: dict[str, object]) -> None:
    direct = _get(report, "direct")
    assert direct.get("status") == 200, direct
    assert direct["issuer"] == "berth test pool CA"
    assert "auth-ok=True" in str(direct["body"])


def test_passthrough_shows_upstream_certificate(
    sandbox: SandboxSetup, report: dict[str, object]
) -> None:
    passthrough = _get(report, "passthrough")
    assert passthrough.get("status") == 200, passthrough
    assert passthrough["issuer"] == "test upstream CA"
    requests = {str(r["path"]): r for r in sandbox_net.upstream_requests(sandbox)}
    headers = requests["/pt"]["headers"]
    assert isinstance(headers, dict)
    assert headers["Authorization"] == "Bearer mine"  # untouched


def test_metadata_and_internal_addresses_denied(report: dict[str, object]) -> None:
    metadata = _get(report, "metadata")
    assert metadata.get("status") == 403, metadata
    assert "169.254.169.254" in str(metadata["body"]) and "denyCidrs" in str(metadata["body"])
    # An allowed server name steered at the metadata address is refused too.
    steered = _get(report, "metadata_direct_ip_https")
    assert steered.get("status") == 403 and "denyCidrs" in str(steered["body"]), steered
    assert _get(report, "raw_tcp_denied")["closed"] is True


def test_allowed_plain_http_and_explicit_mode(report: dict[str, object]) -> None:
    plain = _get(report, "allowed_plain")
    assert plain.get("status") == 200, plain
    explicit = _get(report, "explicit")
    assert explicit.get("status") == 200 and "auth-ok=True" in str(explicit["body"]), explicit


def test_audit_lines(sandbox: SandboxSetup, report: dict[str, object]) -> None:
    assert report  # the client ran
    lines = [
        json.loads(line) for line in sandbox.audit_log.read_text(encoding="utf-8").splitlines()
    ]
    chat = [e for e in lines if e.get("path") == "/v1/chat"]
    assert chat and chat[0]["rule"] == "rule test-api" and chat[0]["status"] == 200
    assert chat[0]["mode"] == "transparent" and chat[0]["host"] == "api.test"
    assert {"host", "method", "path", "rule", "status", "bytes", "duration_ms"} <= set(chat[0])
    denied = [e for e in lines if e.get("host") == "evil.test" and e["decision"] == "deny"]
    assert denied and "allow.hosts" in denied[0]["reason"]


def test_admin_port_refused_to_the_sandbox(report: dict[str, object]) -> None:
    admin = _get(report, "admin")
    assert admin["reachable"] is False, admin


def test_admin_and_proxy_ports_unreachable_from_outside(sandbox: SandboxSetup) -> None:
    """From the upstream namespace (another host on the network): both the admin port and
    the proxy port are closed, since the proxy listens on loopback only; nobody outside
    the Pod can borrow its credentials, NetworkPolicy or not."""
    ns = sandbox.ns
    probe = (
        "import socket\n"
        f"ip='{SANDBOX_IP}'\n"
        "for port in (15021, 15001):\n"
        "    try:\n"
        "        socket.create_connection((ip, port), timeout=5).close(); print('open')\n"
        "    except OSError: print('closed')\n"
    )
    out = subprocess.run(
        ns.exec_argv(ns.upstream, [sys.executable, "-c", probe]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["closed", "closed"], out.stdout


def test_netinit_is_idempotent(sandbox: SandboxSetup) -> None:
    ns = sandbox.ns
    netinit = [
        str(sandbox.bin_dir / "berth-netinit"),
        "--proxy-uid",
        "1337",
        "--proxy-port",
        "15001",
    ]
    sandbox_net.run(ns.exec_argv(ns.sandbox, netinit))
    rules = sandbox_net.run(ns.exec_argv(ns.sandbox, ["iptables", "-t", "nat", "-S"])).stdout
    assert rules.count("-A OUTPUT -p tcp -j BERTH_OUTPUT") == 1, rules
    assert rules.count("REDIRECT --to-ports 15001") == 1, rules
    filters = sandbox_net.run(ns.exec_argv(ns.sandbox, ["iptables", "-S"])).stdout
    assert filters.count("--dport 15021 -j BERTH_ADMIN") == 1, filters
    if shutil.which("ip6tables"):  # IPv6 is rejected, not redirected: the proxy is IPv4
        v6 = sandbox_net.run(ns.exec_argv(ns.sandbox, ["ip6tables", "-S"])).stdout
        assert v6.count("-A OUTPUT -p tcp -j BERTH_OUTPUT6") == 1, v6
    # A clear error and a non-zero exit without the privilege to change rules.
    failed = subprocess.run(
        ns.exec_argv(ns.sandbox, netinit, uid=NOBODY), capture_output=True, text=True, timeout=60
    )
    assert failed.returncode != 0
    assert "berth-netinit:" in failed.stderr and "NET_ADMIN" in failed.stderr, failed.stderr


def test_proxy_uid_is_not_redirected(sandbox: SandboxSetup) -> None:
    """The proxy's own traffic leaves directly (no loop): as UID 1337 a plain socket to the
    upstream gets the upstream's certificate, not a minted one."""
    ns = sandbox.ns
    probe = (
        "import socket,ssl\n"
        f"c=ssl.create_default_context(cafile='{sandbox.bundle}')\n"
        "s=c.wrap_socket(socket.create_connection(('198.18.0.2',443),timeout=10),server_hostname='api.test')\n"
        "print(dict(x[0] for x in s.getpeercert()['issuer'])['commonName'])\n"
    )
    out = subprocess.run(
        ns.exec_argv(
            ns.sandbox, [sandbox_net.system_python(), "-c", probe], uid=sandbox_net.PROXY_UID
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "test upstream CA"


def test_executor_command_goes_through_the_proxy(sandbox: SandboxSetup) -> None:
    """An agent's command run by berth-executor (as nobody) calls the API with no key; the
    proxy adds it. The executor refuses requests without the claim token."""
    ns = sandbox.ns
    token = "claim-token-" + os.urandom(8).hex()
    hash_file = ns.workdir / "executor-token-sha256"
    hash_file.write_text(hashlib.sha256(token.encode()).hexdigest() + "\n", encoding="utf-8")
    hash_file.chmod(0o644)
    executor = [str(sandbox.bin_dir / "berth-executor"), "serve", "--addr", "127.0.0.1:8790"]
    ns.start(
        ns.sandbox, [*executor, "--token-hash-file", str(hash_file)], uid=NOBODY, log="executor"
    )
    command = (
        f'{sandbox_net.system_python()} -c "import urllib.request as u; '
        "print(u.urlopen('https://api.test/v1/from-executor').read().decode())\"; id -u"
    )
    call = (
        "import json, sys, time, urllib.request as u, urllib.error as e\n"
        "token, body = sys.argv[1], json.dumps(json.loads(sys.argv[2])).encode()\n"
        "def post(tok):\n"
        "    r = u.Request('http://127.0.0.1:8790/v1/exec', data=body, method='POST',\n"
        "        headers={'Authorization': 'Bearer ' + tok, 'Accept': 'application/json'})\n"
        "    try:\n"
        "        return u.urlopen(r, timeout=60).read().decode()\n"
        "    except e.HTTPError as err:\n"
        "        return str(err.code)\n"
        "    except OSError:\n"
        "        return 'down'\n"
        "deadline = time.time() + 30\n"
        "while post('x') == 'down' and time.time() < deadline:\n"
        "    time.sleep(0.1)\n"
        "print(json.dumps({'bad': post('wrong-token'), 'good': json.loads(post(token))}))\n"
    )
    body = json.dumps({"command": command, "env": {"SSL_CERT_FILE": str(sandbox.bundle)}})
    out = subprocess.run(
        ns.exec_argv(ns.sandbox, [sys.executable, "-c", call, token, body]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["bad"] == "401"
    good = result["good"]
    assert good["exitCode"] == 0, good
    assert "auth-ok=True" in good["output"] and good["output"].strip().endswith(str(NOBODY)), good
    assert sandbox.secret not in good["output"]
