"""The sandbox's process: runs as an unprivileged user inside the sandbox namespace.

Standard library only (it runs under the system python3 as `nobody`). It makes the
requests an agent's code would make and reports, as one JSON object on stdout, what
it saw, including every place it could look for the secret. The test decides.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import sys
import urllib.request
from pathlib import Path
from typing import Any

BUNDLE, SEARCH_ROOT = sys.argv[1], sys.argv[2]
# The value to look for comes on stdin, so it is not itself in this process's cmdline.
SECRET_PREFIX = sys.stdin.readline().strip()
UPSTREAM_IP = "198.18.0.2"
seen_text: list[str] = []  # every response body and header block, searched for the secret


def ctx() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=BUNDLE)


def issuer_cn(sock: ssl.SSLSocket) -> str:
    cert: Any = sock.getpeercert()
    for rdn in cert.get("issuer", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def https_get(
    host: str, path: str, *, connect_ip: str | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """GET over TLS, straight to host:443 (or to connect_ip, ignoring name resolution)."""
    try:
        raw = socket.create_connection((connect_ip or host, 443), timeout=20)
        tls = ctx().wrap_socket(raw, server_hostname=host)
        conn = http.client.HTTPSConnection(host, 443, timeout=20, context=ctx())
        conn.sock = tls
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        seen_text.append(str(resp.headers) + body)
        out = {"status": resp.status, "body": body, "issuer": issuer_cn(tls)}
        conn.close()
        return out
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def http_get(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            body = resp.read().decode(errors="replace")
            seen_text.append(str(resp.headers) + body)
            return {"status": resp.status, "body": body}
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        seen_text.append(str(exc.headers) + body)
        return {"status": exc.code, "body": body}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def explicit_proxy_get(url: str) -> dict[str, Any]:
    """The weaker HTTPS_PROXY mode: CONNECT through 127.0.0.1:15001."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler(
            {"https": "http://127.0.0.1:15001", "http": "http://127.0.0.1:15001"}
        ),
        urllib.request.HTTPSHandler(context=ctx()),
    )
    try:
        with opener.open(url, timeout=20) as resp:
            body = resp.read().decode(errors="replace")
            seen_text.append(str(resp.headers) + body)
            return {"status": resp.status, "body": body}
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        seen_text.append(body)
        return {"status": exc.code, "body": body}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def raw_tcp(port: int) -> dict[str, Any]:
    """A non-HTTP protocol to a port outside the allow list: the tunnel must be closed."""
    try:
        with socket.create_connection((UPSTREAM_IP, port), timeout=20) as s:
            s.sendall(b"SSH-2.0-probe\r\n")
            data = s.recv(100)
            return {"closed": data == b"", "data": data.decode(errors="replace")}
    except OSError as exc:
        return {"closed": True, "error": str(exc)}


def admin_port() -> dict[str, Any]:
    """The proxy's loopback admin port, from the sandbox's UID: must be refused."""
    try:
        with socket.create_connection(("127.0.0.1", 15021), timeout=10) as s:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            return {"reachable": True, "data": s.recv(200).decode(errors="replace")}
    except OSError as exc:
        return {"reachable": False, "error": str(exc)}


def find_secret() -> list[str]:
    """Everywhere this user can look: its environment, readable files under the test's
    directory and /etc, every process's readable environ and cmdline, and responses."""
    hits = []
    if any(SECRET_PREFIX in v for v in os.environ.values()):
        hits.append("own environment")
    roots = [Path(SEARCH_ROOT), Path("/etc"), Path("/tmp")]
    for root in roots:
        for dirpath, _dirs, files in os.walk(root, onerror=lambda e: None):
            for name in files:
                p = Path(dirpath) / name
                try:
                    if (
                        p.is_file()
                        and p.stat().st_size < 1 << 20
                        and SECRET_PREFIX in p.read_text(errors="ignore")
                    ):
                        hits.append(str(p))
                except OSError:
                    pass
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        for what in ("environ", "cmdline"):
            try:
                if SECRET_PREFIX.encode() in (proc / what).read_bytes():
                    hits.append(f"{proc}/{what}")
            except OSError:
                pass
    for text in seen_text:
        if SECRET_PREFIX in text:
            hits.append("a response: " + text[:200])
    return hits


def main() -> None:
    for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        os.environ.pop(k, None)
    report: dict[str, Any] = {"uid": os.getuid()}
    report["injected"] = https_get(
        "api.test", "/v1/chat", headers={"Authorization": "Bearer sandbox-has-no-key"}
    )
    report["outside_prefix"] = https_get("api.test", "/health")
    report["denied"] = https_get("evil.test", "/steal")
    # Ignores every proxy setting: a socket straight to the IP, SNI api.test.
    os.environ["HTTPS_PROXY"] = "http://127.0.0.1:9"  # a bogus proxy the raw socket ignores
    report["direct"] = https_get("api.test", "/v1/direct", connect_ip=UPSTREAM_IP)
    del os.environ["HTTPS_PROXY"]
    report["passthrough"] = https_get("pass.test", "/pt", headers={"Authorization": "Bearer mine"})
    report["allowed_plain"] = http_get("http://open.test/plain")
    report["metadata"] = http_get("http://169.254.169.254/latest/meta-data/iam/")
    report["metadata_direct_ip_https"] = https_get(
        "api.test", "/v1/meta", connect_ip="169.254.169.254"
    )
    report["explicit"] = explicit_proxy_get("https://api.test/v1/explicit")
    report["explicit_denied"] = explicit_proxy_get("https://evil.test/")
    report["raw_tcp_denied"] = raw_tcp(2222)
    report["admin"] = admin_port()
    report["secret_found_in"] = find_secret()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
