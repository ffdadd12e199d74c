"""Auth proxy overhead: HTTPS latency through berth-auth-proxy against a direct call.

Builds the sandbox network of tests/support/sandbox_net.py (network namespaces, berth-netinit's
iptables rules, the proxy as UID 1337, a local HTTPS upstream with its own CA). In the same
run and the same namespace, one client runs as `nobody` (transparently redirected through the
proxy, which intercepts TLS and injects the header) and one as UID 1337 (exempt from the
redirect: the direct peer). Reports p50/p99 per request with keep-alive and with a new TLS
connection per request, requests/s of one sequential client and of concurrent clients, and the
proxy's RSS idle and under load from /proc. Needs root (namespaces); loopback/veth only,
bounded in count and time.

    .venv/bin/python bench/proxy_overhead.py   # as root
    .venv/bin/python bench/proxy_overhead.py --requests 2000 --new-conn 300 --rounds 4 --clients 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import sandbox_net  # noqa: E402

TIMER = ROOT / "tests" / "support" / "https_timer.py"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def proxy_pid(setup: sandbox_net.SandboxSetup) -> int:
    """`ip netns exec` and `setpriv` exec in place, so the Popen pid is the proxy's."""
    pid = setup.proxy.pid
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    if not comm.startswith("berth-auth"):
        raise RuntimeError(f"pid {pid} is {comm}, not the proxy")
    return pid


def run_client(
    setup: sandbox_net.SandboxSetup, script: Path, uid: int, mode: str, n: int, warmup: int
) -> list[float]:
    ns = setup.ns
    argv = ns.exec_argv(
        ns.sandbox,
        [
            sandbox_net.system_python(),
            str(script),
            mode,
            "api.test",
            "/v1/bench",
            str(n),
            str(warmup),
            str(setup.bundle),
        ],
        uid=uid,
    )
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    lat: list[float] = json.loads(out.stdout)
    return lat


def load(
    setup: sandbox_net.SandboxSetup, script: Path, uid: int, clients: int, n: int, pid: int | None
) -> tuple[float, int]:
    """Concurrent keep-alive clients; returns (requests/s, peak proxy RSS KiB sampled)."""
    ns = setup.ns
    argv = ns.exec_argv(
        ns.sandbox,
        [
            sandbox_net.system_python(),
            str(script),
            "keepalive",
            "api.test",
            "/v1/bench",
            str(n),
            "20",
            str(setup.bundle),
        ],
        uid=uid,
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set() and pid is not None:
            peak = max(peak, rss_kib(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(clients)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(err.decode())
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    return clients * n / wall, peak


def summary(lat: list[float]) -> dict[str, float]:
    return {
        "p50": pct(lat, 50),
        "p99": pct(lat, 99),
        "mean": statistics.fmean(lat),
        "rps": 1000 / statistics.fmean(lat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=2000, help="keep-alive requests per client run"
    )
    parser.add_argument(
        "--new-conn", type=int, default=300, help="new-connection requests per client run"
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="interleaved direct/proxy rounds per mode"
    )
    parser.add_argument(
        "--clients", type=int, default=4, help="concurrent clients in the load phase"
    )
    parser.add_argument(
        "--load-requests", type=int, default=1500, help="requests per client in the load phase"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("proxy_overhead.py needs root (network namespaces and iptables)")

    with sandbox_net.netns_pair() as ns:
        setup = sandbox_net.start_sandbox(ns)
        pid = proxy_pid(setup)
        script = ns.workdir / "https_timer.py"
        shutil.copy(TIMER, script)
        script.chmod(0o644)
        time.sleep(1.0)
        idle_rss = rss_kib(pid)

        results: dict[str, Any] = {}
        for mode, n, warm in (("keepalive", args.requests, 100), ("newconn", args.new_conn, 20)):
            # Interleave direct and proxied rounds so load from elsewhere hits both alike.
            direct: list[float] = []
            proxied: list[float] = []
            for _ in range(args.rounds):
                direct += run_client(
                    setup, script, sandbox_net.PROXY_UID, mode, n // args.rounds, warm
                )
                proxied += run_client(
                    setup, script, sandbox_net.NOBODY, mode, n // args.rounds, warm
                )
            results[mode] = {"direct": summary(direct), "proxy": summary(proxied)}
        after_seq_rss = rss_kib(pid)
        direct_rps, _ = load(
            setup, script, sandbox_net.PROXY_UID, args.clients, args.load_requests, None
        )
        proxy_rps, peak_rss = load(
            setup, script, sandbox_net.NOBODY, args.clients, args.load_requests, pid
        )
        after_load_rss = rss_kib(pid)
        audit_lines = len(setup.audit_log.read_text(encoding="utf-8").splitlines())

    print(
        "\nAuth proxy overhead (HTTPS intercepted, header injected; Python https.server upstream)"
    )
    print(f"{'mode':<30}{'direct':>10}{'proxy':>10}{'added':>10}{'ratio':>8}")

    def row(label: str, direct: float, proxy: float, added: bool) -> None:
        diff = f"{proxy - direct:>10.3f}" if added else f"{'':>10}"
        print(f"{label:<30}{direct:>10.3f}{proxy:>10.3f}{diff}{proxy / direct:>8.2f}")

    for mode in ("keepalive", "newconn"):
        d, p = results[mode]["direct"], results[mode]["proxy"]
        for key in ("p50", "p99"):
            row(f"{mode} {key} ms", d[key], p[key], True)
        row(f"{mode} req/s (1 client)", d["rps"], p["rps"], False)
    row(f"req/s ({args.clients} clients, keep-alive)", direct_rps, proxy_rps, False)
    print(
        f"\nproxy RSS MiB: idle {idle_rss / 1024:.1f}, "
        f"after sequential {after_seq_rss / 1024:.1f}, "
        f"peak under load {peak_rss / 1024:.1f}, after load {after_load_rss / 1024:.1f}"
    )
    print(f"audit lines written: {audit_lines}")
    print(
        json.dumps(
            {
                "results": results,
                "load_rps": {"direct": direct_rps, "proxy": proxy_rps},
                "rss_mib": {"idle": idle_rss / 1024, "peak_load": peak_rss / 1024},
            }
        )
    )


if __name__ == "__main__":
    main()
