"""A sandbox Pod's network, rebuilt from Linux network namespaces.

Used by the egress end-to-end test and bench/proxy_overhead.py: a "sandbox" namespace
(where berth-netinit's iptables rules, the auth proxy as UID 1337 and the unprivileged
sandbox process live, like the containers of one Pod) joined by a veth pair to an
"upstream" namespace holding a local HTTPS server with its own CA, standing in for an
API on the internet. Needs root. Every name is unique per call, so concurrent runs do
not collide, and everything is removed on exit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.pki import CA, make_ca, make_leaf

ROOT = Path(__file__).resolve().parents[2]
PROXY_UID = 1337
NOBODY = 65534
SANDBOX_IP = "198.18.0.1"  # RFC 2544 benchmarking range: never a real host
UPSTREAM_IP = "198.18.0.2"
METADATA_IP = "169.254.169.254"
UPSTREAM_HOSTS = ("api.test", "pass.test", "evil.test", "open.test")


def build_binaries() -> Path:
    """Build (or reuse from the cache) the static Go binaries; return their directory."""
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "build-auth-proxy.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def system_python() -> str:
    """A Python interpreter that an unprivileged user can run (not one under /root)."""
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"):
        if os.access(cand, os.X_OK):
            return cand
    raise RuntimeError(
        "no system python3 (Debian package python3) for the unprivileged sandbox process"
    )


def run(
    cmd: Sequence[str], *, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its output on failure."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        output = proc.stderr.strip() or proc.stdout.strip()
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {output}")
    return proc


@dataclass
class Netns:
    """Names and paths of one sandbox/upstream namespace pair."""

    sandbox: str
    upstream: str
    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def exec_argv(self, ns: str, argv: Sequence[str], *, uid: int | None = None) -> list[str]:
        """argv run inside ns, optionally as uid (with no groups and no capabilities)."""
        prefix = ["ip", "netns", "exec", ns]
        if uid is not None:
            prefix += [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--inh-caps=-all",
            ]
        return prefix + list(argv)

    def start(
        self, ns: str, argv: Sequence[str], *, uid: int | None = None, log: str = "proc"
    ) -> subprocess.Popen[bytes]:
        """Start a background process in ns; its stdout/stderr go to workdir/<log>.{out,err}."""
        out = (self.workdir / f"{log}.out").open("wb")
        err = (self.workdir / f"{log}.err").open("wb")
        proc = subprocess.Popen(
            self.exec_argv(ns, argv, uid=uid), stdout=out, stderr=err, start_new_session=True
        )
        out.close()
        err.close()
        self.procs.append(proc)
        return proc


@contextmanager
def netns_pair(hosts: Sequence[str] = UPSTREAM_HOSTS) -> Iterator[Netns]:
    """Create the sandbox and upstream namespaces joined by a veth pair.

    The sandbox's default route leads to the upstream namespace, which also owns the
    metadata address 169.254.169.254, so a direct connection there would succeed
    without the proxy. Host names resolve via /etc/netns/<sandbox>/hosts, which
    `ip netns exec` bind-mounts over /etc/hosts.
    """
    if os.geteuid() != 0:
        raise PermissionError("network namespaces need root")
    suffix = uuid.uuid4().hex[:6]
    ns = Netns(
        f"berth-sb-{suffix}", f"berth-up-{suffix}", Path(tempfile.mkdtemp(prefix="berth-netns-"))
    )
    ns.workdir.chmod(0o755)
    etc = Path("/etc/netns") / ns.sandbox
    veth_sb, veth_up = f"bsb{suffix}", f"bup{suffix}"
    try:
        run(["ip", "netns", "add", ns.sandbox])
        run(["ip", "netns", "add", ns.upstream])
        run(["ip", "link", "add", veth_sb, "type", "veth", "peer", "name", veth_up])
        run(["ip", "link", "set", veth_sb, "netns", ns.sandbox])
        run(["ip", "link", "set", veth_up, "netns", ns.upstream])
        for name, dev, addr in (
            (ns.sandbox, veth_sb, SANDBOX_IP),
            (ns.upstream, veth_up, UPSTREAM_IP),
        ):
            run(["ip", "-n", name, "addr", "add", f"{addr}/24", "dev", dev])
            run(["ip", "-n", name, "link", "set", dev, "up"])
            run(["ip", "-n", name, "link", "set", "lo", "up"])
        run(["ip", "-n", ns.upstream, "addr", "add", f"{METADATA_IP}/32", "dev", veth_up])
        run(["ip", "-n", ns.sandbox, "route", "add", "default", "via", UPSTREAM_IP])
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(
            "127.0.0.1 localhost\n" + f"{UPSTREAM_IP} {' '.join(hosts)}\n", encoding="utf-8"
        )
        (etc / "hosts").chmod(0o644)
        yield ns
    finally:
        for proc in ns.procs:
            if proc.poll() is None:
                proc.kill()
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        for name in (ns.sandbox, ns.upstream):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        shutil.rmtree(etc, ignore_errors=True)
        shutil.rmtree(ns.workdir, ignore_errors=True)


@dataclass(frozen=True)
class SandboxSetup:
    """Files and processes of one running sandbox network."""

    ns: Netns
    bin_dir: Path
    pool_ca: CA
    upstream_ca: CA
    secret: str
    bundle: Path  # what the sandbox trusts: pool CA + upstream CA (stands in for Mozilla's)
    upstream_log: Path
    audit_log: Path
    proxy: subprocess.Popen[bytes]


def _owned(path: Path, data: bytes, uid: int, mode: int) -> Path:
    path.write_bytes(data)
    os.chown(path, uid, uid)
    path.chmod(mode)
    return path


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll check until it returns True."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def start_sandbox(
    ns: Netns,
    *,
    rules_path_prefix: str = "/v1/",
    netinit_args: Sequence[str] = (),
    configure: Callable[[dict[str, Any], Path], None] | None = None,
) -> SandboxSetup:
    """Start the upstream, apply berth-netinit and run the proxy as UID 1337 in ns."""
    bin_src = build_binaries()
    bin_dir = ns.workdir / "bin"
    bin_dir.mkdir()
    bin_dir.chmod(0o755)
    for b in ("berth-auth-proxy", "berth-executor", "berth-netinit"):
        shutil.copy2(bin_src / b, bin_dir / b)
        (bin_dir / b).chmod(0o755)

    pool_ca, upstream_ca = make_ca("berth test pool CA"), make_ca("test upstream CA")
    secret = "sk-test-" + uuid.uuid4().hex
    up_dir = ns.workdir / "upstream"
    up_dir.mkdir(mode=0o700)
    leaf, leaf_key = make_leaf(upstream_ca, list(UPSTREAM_HOSTS))
    (up_dir / "tls.crt").write_bytes(leaf)
    (up_dir / "tls.key").write_bytes(leaf_key)
    shutil.copy(Path(__file__).with_name("https_upstream.py"), up_dir / "server.py")
    upstream_log = up_dir / "requests.jsonl"
    upstream_log.touch()
    (up_dir / "expected-secret").write_text(secret, encoding="utf-8")
    up = ns.start(
        ns.upstream,
        [
            sys.executable,
            str(up_dir / "server.py"),
            str(upstream_log),
            str(up_dir / "tls.crt"),
            str(up_dir / "tls.key"),
            str(up_dir / "expected-secret"),
        ],
        log="upstream",
    )
    out_path = ns.workdir / "upstream.out"
    wait_until(
        lambda: b"ready" in out_path.read_bytes() or up.poll() is not None,
        60,
        "the upstream server",
    )
    if up.poll() is not None:
        raise RuntimeError("upstream died: " + (ns.workdir / "upstream.err").read_text())

    # Proxy-only files, readable by UID 1337 alone (in a Pod only the proxy container mounts them).
    pdir = ns.workdir / "proxy"
    pdir.mkdir(mode=0o700)
    os.chown(pdir, PROXY_UID, PROXY_UID)
    _owned(pdir / "tls.crt", pool_ca.cert_pem, PROXY_UID, 0o400)
    _owned(pdir / "tls.key", pool_ca.key_pem, PROXY_UID, 0o400)
    _owned(pdir / "upstream-ca.crt", upstream_ca.cert_pem, PROXY_UID, 0o400)
    secret_file = _owned(pdir / "api-key", (secret + "\n").encode(), PROXY_UID, 0o400)
    config = {
        "listen": "127.0.0.1:15001",  # as the operator renders it: loopback only
        "adminListen": "127.0.0.1:15021",
        "caCertFile": str(pdir / "tls.crt"),
        "caKeyFile": str(pdir / "tls.key"),
        "upstreamCAFile": str(pdir / "upstream-ca.crt"),
        "rules": [
            {
                "name": "test-api",
                "hosts": ["api.test"],
                "pathPrefix": rules_path_prefix,
                "headers": [
                    {
                        "name": "Authorization",
                        "value": "Bearer {secret}",
                        "secretFile": str(secret_file),
                    }
                ],
            }
        ],
        "allow": {"hosts": ["open.test"], "cidrs": [], "ports": [443, 80]},
        "passthrough": ["pass.test"],
    }
    if configure is not None:  # a test's own rules and proxy-only files (in pdir)
        configure(config, pdir)
    _owned(pdir / "config.json", json.dumps(config).encode(), PROXY_UID, 0o400)

    # What the sandbox sees: the CA bundle only (like the Pod's /berth/ca/ca-bundle.crt).
    bundle = ns.workdir / "ca-bundle.crt"
    bundle.write_bytes(upstream_ca.cert_pem + pool_ca.cert_pem)
    bundle.chmod(0o644)

    run(
        ns.exec_argv(
            ns.sandbox,
            [
                str(bin_dir / "berth-netinit"),
                "--proxy-uid",
                str(PROXY_UID),
                "--proxy-port",
                "15001",
                *netinit_args,
            ],
        )
    )
    proxy = ns.start(
        ns.sandbox,
        [str(bin_dir / "berth-auth-proxy"), "--config", str(pdir / "config.json")],
        uid=PROXY_UID,
        log="proxy",
    )
    # The exec probe a Pod would use: the proxy binary, as the proxy UID (the only UID
    # berth-netinit lets reach the loopback admin port).
    probe = ns.exec_argv(
        ns.sandbox,
        [
            str(bin_dir / "berth-auth-proxy"),
            "--config",
            str(pdir / "config.json"),
            "--probe",
            "readyz",
        ],
        uid=PROXY_UID,
    )

    def ready() -> bool:
        if proxy.poll() is not None:
            raise RuntimeError("proxy died: " + (ns.workdir / "proxy.err").read_text())
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0

    wait_until(ready, 60, "the proxy's /readyz")
    return SandboxSetup(
        ns,
        bin_dir,
        pool_ca,
        upstream_ca,
        secret,
        bundle,
        upstream_log,
        ns.workdir / "proxy.out",
        proxy,
    )


def upstream_requests(setup: SandboxSetup) -> list[dict[str, object]]:
    """Requests the upstream received, in order."""
    lines = setup.upstream_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
