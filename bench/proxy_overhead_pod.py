"""Auth proxy overhead inside real Pods on the real node, next to a direct call.

Installs Berth as the e2e tier does (tests/support/release.py: images, real kubelet node, helm),
then the e2e sandbox setup (tests/e2e/test_sandbox_on_node.py: an HTTPS upstream Pod with its
own CA behind a Service, a SandboxPool whose proxy injects a header for it). In the same run it
times sequential HTTPS GETs to the upstream (tests/support/https_timer.py) from two Pods of the
same image on the same node: a warm sandbox Pod, whose traffic the netinit redirect sends
through the auth proxy (TLS interception, header injection, the egress policy), and a plain
Pod next to it that calls the upstream directly. Rounds alternate so other load hits both
alike. Prints p50/p99 per request with keep-alive and with a new TLS connection per request,
and the ratio; the namespace-only figure is bench/proxy_overhead.py's.

    .venv/bin/python bench/proxy_overhead_pod.py              # as root; one real node per machine
    .venv/bin/python bench/proxy_overhead_pod.py --requests 1000 --new-conn 200 --rounds 4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import test_sandbox_on_node as sbx  # noqa: E402
from tests.e2e.access import pods  # noqa: E402
from tests.e2e.conftest import E2E  # noqa: E402
from tests.support import release  # noqa: E402
from tests.support.pki import make_ca  # noqa: E402

TIMER = (ROOT / "tests" / "support" / "https_timer.py").read_text()
DIRECT_POD = "direct-client"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def direct_client(e2e: E2E) -> dict[str, Any]:
    """A plain Pod of the sandbox image, not in the pool: no redirect, no proxy."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": DIRECT_POD, "namespace": sbx.NS},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "client",
                    "image": e2e.image("berth-test-curl"),
                    "command": ["sleep", "infinity"],
                    "volumeMounts": [{"name": "ca", "mountPath": "/ca"}],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
            "volumes": [{"name": "ca", "configMap": {"name": "upstream-ca"}}],
        },
    }


def timed(e2e: E2E, target: list[str], bundle: str, mode: str, n: int, warmup: int) -> list[float]:
    """Latencies (ms) of `n` GETs timed inside a Pod (`target`: namespace, Pod, container
    arguments of kubectl exec); the timer script arrives on stdin, `bundle` is the CA file
    (a shell word: the sandbox's own bundle is `$SSL_CERT_FILE`)."""
    script = f"exec python3 - {mode} {sbx.API_HOST} /upstream {n} {warmup} {bundle}"
    out = e2e.kubectl("exec", "-i", *target, "--", "sh", "-c", script, input=TIMER)
    return [float(x) for x in json.loads(out.strip().splitlines()[-1])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="keep-alive GETs per side")
    parser.add_argument("--new-conn", type=int, default=120, help="new-connection GETs per side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    with release.installed() as done:
        e2e = E2E(node=done.node, images=done.images, values=done.values)
        ca = make_ca("berth bench upstream CA")
        api_ip, _ = sbx._start_upstream(e2e, ca)
        e2e.kubectl("create", "namespace", sbx.NS)
        e2e.kubectl(
            "apply", "-f", "-",
            input=sbx._docs(
                {"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "api-key", "namespace": sbx.NS},
                 "stringData": {"key": "sk-bench-0123456789"}},
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "upstream-ca", "namespace": sbx.NS},
                 "data": {"ca.crt": ca.cert_pem.decode()}},
                sbx.pool_manifest(e2e, api_ip),
                direct_client(e2e),
            ),
        )  # fmt: skip
        e2e.kubectl("-n", sbx.NS, "wait", "--for=condition=Ready", f"sandboxpool/{sbx.POOL}",
                    "--timeout=180s")  # fmt: skip
        e2e.kubectl("-n", sbx.NS, "wait", "--for=condition=Ready", f"pod/{DIRECT_POD}",
                    "--timeout=120s")  # fmt: skip
        warm = pods(e2e.cp, sbx.NS, f"berth.dev/pool={sbx.POOL}")[0]["metadata"]["name"]
        proxied = (["-n", sbx.NS, warm, "-c", "sandbox"], '"$SSL_CERT_FILE"')
        plain = (["-n", sbx.NS, DIRECT_POD], "/ca/ca.crt")
        results: dict[str, Any] = {"node_load": Path("/proc/loadavg").read_text().split()[:3]}
        for mode, n, warmup in (("keepalive", args.requests, 50), ("newconn", args.new_conn, 10)):
            direct: list[float] = []
            through: list[float] = []
            for _ in range(args.rounds):
                direct += timed(e2e, *plain, mode, n // args.rounds, warmup)
                through += timed(e2e, *proxied, mode, n // args.rounds, warmup)
            results[mode] = {
                "direct_p50_ms": pct(direct, 50),
                "direct_p99_ms": pct(direct, 99),
                "proxied_p50_ms": pct(through, 50),
                "proxied_p99_ms": pct(through, 99),
                "n": len(direct),
            }
        log = e2e.kubectl("-n", sbx.NS, "logs", warm, "-c", "auth-proxy")
        results["proxy_injected"] = log.count('"decision":"allow"')
    print("== auth proxy in a real sandbox Pod vs a direct call from a plain Pod (same node) ==")
    print(f"load average at the start: {' '.join(results['node_load'])}")
    for mode in ("keepalive", "newconn"):
        r = results[mode]
        print(
            f"{mode:9s} n={r['n']}: direct p50 {r['direct_p50_ms']:.2f} ms p99 "
            f"{r['direct_p99_ms']:.2f} ms | through the proxy p50 {r['proxied_p50_ms']:.2f} ms "
            f"p99 {r['proxied_p99_ms']:.2f} ms | overhead p50 "
            f"+{r['proxied_p50_ms'] - r['direct_p50_ms']:.2f} ms "
            f"({r['proxied_p50_ms'] / r['direct_p50_ms']:.2f}x)"
        )
    print(f"proxy log lines with an allow decision: {results['proxy_injected']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
