"""Sandbox claim latency against a warm pool on the local control plane (kwok nodes).

For 100 claims in bursts of 1, 10 and 50 (a burst is created at once from parallel
threads; the next burst starts once the pool is full again), it measures from just
before the claim's POST to

- adoption: the watch shows a Pod labelled ``berth.dev/claim=<claim>``;
- Ready: the watch shows the claim's ``Ready`` condition True;

and prints p50/p90/p99 next to kubernetes-sigs/agent-sandbox's CI thresholds for claim
adoption on kwok (p50 and p90 <= 300 ms, p99 <= 500 ms) as a ratio. The floor, measured
in the same run: a plain ConfigMap's POST until the same watch client sees it (what any
controller's answer costs at least). Then the refill time of a pool scaled from 0 to 100
until 100 warm Pods are Ready.

    .venv/bin/python bench/claim_latency.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import controlplane  # noqa: E402

BIN = Path(sys.executable).parent
NS = "bench-claims"
N = int(os.environ.get("BERTH_BENCH_CLAIMS", "100"))
WARM = 100
BURSTS = (1, 10, 50)
THRESHOLDS = {"p50": 300.0, "p90": 300.0, "p99": 500.0}
GROUP, VERSION = "berth.dev", "v1alpha1"


def say(msg: str) -> None:
    print(f">> {msg}", flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


class Recorder:
    """Watches claims, Pods and ConfigMaps of the namespace; first-seen times per name."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client
        self.ready: dict[str, float] = {}
        self.adopted: dict[str, float] = {}
        self.seen_cm: dict[str, float] = {}
        self.warm_ready: dict[str, set[str]] = {}
        self.cv = threading.Condition()
        self.stop = False

    def start(self) -> None:
        for target in (self._claims, self._pods, self._configmaps):
            threading.Thread(target=self._loop, args=(target,), daemon=True).start()

    def _loop(self, target: Any) -> None:
        while not self.stop:
            try:
                target()
            except Exception as e:  # a watch ends or breaks: start again
                if not self.stop:
                    say(f"watch restarted: {e}")

    def _claims(self) -> None:
        api = kubernetes.client.CustomObjectsApi(self.client)
        for ev in kubernetes.watch.Watch().stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            NS,
            "sandboxclaims",
            timeout_seconds=600,
            deserialize=False,
        ):
            t = time.perf_counter()
            body = ev["object"]
            name = body["metadata"]["name"]
            conds = (body.get("status") or {}).get("conditions") or ()
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                with self.cv:
                    self.ready.setdefault(name, t)
                    self.cv.notify_all()

    def _pods(self) -> None:
        core = kubernetes.client.CoreV1Api(self.client)
        for ev in kubernetes.watch.Watch().stream(
            core.list_namespaced_pod, NS, timeout_seconds=600, deserialize=False
        ):
            t = time.perf_counter()
            pod = ev["object"]
            meta = pod["metadata"]
            labels = meta.get("labels") or {}
            with self.cv:
                if "berth.dev/claim" in labels:
                    self.adopted.setdefault(labels["berth.dev/claim"], t)
                pool = labels.get("berth.dev/pool")
                for members in self.warm_ready.values():
                    members.discard(meta["name"])
                ok = any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (pod.get("status") or {}).get("conditions") or ()
                )
                if (
                    pool
                    and ev["type"] != "DELETED"
                    and ok
                    and not meta.get("deletionTimestamp")
                    and labels.get("berth.dev/sandbox-state") == "warm"
                ):
                    self.warm_ready.setdefault(pool, set()).add(meta["name"])
                self.cv.notify_all()

    def _configmaps(self) -> None:
        core = kubernetes.client.CoreV1Api(self.client)
        for ev in kubernetes.watch.Watch().stream(
            core.list_namespaced_config_map, NS, timeout_seconds=600, deserialize=False
        ):
            t = time.perf_counter()
            with self.cv:
                self.seen_cm.setdefault(ev["object"]["metadata"]["name"], t)
                self.cv.notify_all()

    def wait(self, pred: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self.cv:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(what)
                self.cv.wait(left)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kubectl(env: dict[str, str], *args: str, input: str | None = None) -> str:
    r = subprocess.run(
        [str(BIN / "kubectl"), *args], env=env, input=input, capture_output=True, text=True
    )
    if r.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:3])}: {r.stderr[-2000:]}")
    return r.stdout


def pool_body(replicas: int, name: str = "warm") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SandboxPool",
        "metadata": {"name": name},
        "spec": {
            "template": {"image": "ghcr.io/berth-dev/sandbox-python:3.12"},
            "replicas": replicas,
            "maxSize": 1000,
        },
    }


def claim_body(name: str, pool: str = "warm") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SandboxClaim",
        "metadata": {"name": name},
        "spec": {"poolRef": {"name": pool}},
    }


def run_bursts(
    rec: Recorder, client: kubernetes.client.ApiClient, burst: int
) -> dict[str, list[float]]:
    api = kubernetes.client.CustomObjectsApi(client)
    t0: dict[str, float] = {}

    def create(name: str) -> None:
        t0[name] = time.perf_counter()
        api.create_namespaced_custom_object(GROUP, VERSION, NS, "sandboxclaims", claim_body(name))

    names = [f"b{burst}-{i:03d}" for i in range(N)]
    with ThreadPoolExecutor(max_workers=burst) as ex:
        for start in range(0, N, burst):
            group = names[start : start + burst]
            rec.wait(lambda: len(rec.warm_ready.get("warm", ())) >= WARM, 300, "pool refilled")
            list(ex.map(create, group))
            rec.wait(
                lambda g=group: all(n in rec.ready and n in rec.adopted for n in g),
                120,
                f"burst of {burst} Ready",
            )
    out = {
        "adopt": [(rec.adopted[n] - t0[n]) * 1000 for n in names],
        "ready": [(rec.ready[n] - t0[n]) * 1000 for n in names],
    }
    # Release them (and let the pool settle) before the next series.
    for n in names:
        api.delete_namespaced_custom_object(GROUP, VERSION, NS, "sandboxclaims", n)
    return out


def floor(rec: Recorder, client: kubernetes.client.ApiClient) -> list[float]:
    core = kubernetes.client.CoreV1Api(client)
    out = []
    for i in range(N):
        name = f"floor-{i:03d}"
        t = time.perf_counter()
        core.create_namespaced_config_map(NS, {"metadata": {"name": name}, "data": {"k": "v"}})
        rec.wait(lambda n=name: n in rec.seen_cm, 30, "ConfigMap seen")
        out.append((rec.seen_cm[name] - t) * 1000)
    return out


def refill(rec: Recorder, client: kubernetes.client.ApiClient) -> float:
    api = kubernetes.client.CustomObjectsApi(client)
    api.create_namespaced_custom_object(GROUP, VERSION, NS, "sandboxpools", pool_body(0, "refill"))
    time.sleep(2)
    t = time.perf_counter()
    api.patch_namespaced_custom_object_scale(
        GROUP, VERSION, NS, "sandboxpools", "refill", {"spec": {"replicas": 100}}
    )
    rec.wait(lambda: len(rec.warm_ready.get("refill", ())) >= 100, 300, "refill to 100")
    return time.perf_counter() - t


def row(label: str, values: list[float], thresholds: bool) -> str:
    p = {q: pct(values, float(q[1:])) for q in ("p50", "p90", "p99")}
    text = f"{label:<28} " + "  ".join(f"{q} {v:7.1f} ms" for q, v in p.items())
    if thresholds:
        text += "   ratio to agent-sandbox CI: " + "  ".join(
            f"{q} {p[q] / THRESHOLDS[q]:.2f}" for q in p
        )
    return text


def main() -> int:
    cp = controlplane.start()
    env = cp.env()
    log = Path(tempfile.mkstemp(prefix="berth-bench-claims-", suffix=".log")[1])
    proc: subprocess.Popen[bytes] | None = None
    try:
        kubectl(env, "apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl(env, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        kubectl(env, "create", "namespace", NS)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(BIN / "berth-operator"), "run", "--namespace", NS, "--standalone"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        client = kubernetes.config.new_client_from_config(config_file=str(cp.kubeconfig))
        client.configuration.connection_pool_maxsize = 64
        rec = Recorder(client)
        rec.start()
        time.sleep(3)
        say(f"warm pool of {WARM} (maxSize 1000)")
        t = time.perf_counter()
        kubectl(env, "apply", "-n", NS, "-f", "-", input=yaml.safe_dump(pool_body(WARM)))
        rec.wait(lambda: len(rec.warm_ready.get("warm", ())) >= WARM, 300, "warm pool")
        say(f"   {WARM} warm Pods Ready after {time.perf_counter() - t:.1f}s")
        results: dict[int, dict[str, list[float]]] = {}
        cpu: dict[int, tuple[float, float]] = {}
        apiserver = cp.pids.get("kube-apiserver", 0)
        for burst in BURSTS:
            say(f"{N} claims in bursts of {burst}")
            before = (cpu_seconds(proc.pid), cpu_seconds(apiserver))
            results[burst] = run_bursts(rec, client, burst)
            cpu[burst] = (
                (cpu_seconds(proc.pid) - before[0]) / N * 1000,
                (cpu_seconds(apiserver) - before[1]) / N * 1000,
            )
        say(f"floor: {N} ConfigMaps, POST until the watch sees them")
        base = floor(rec, client)
        say("refill: pool scaled from 0 to 100")
        refill_s = refill(rec, client)

        print()
        print(f"Sandbox claim latency, {N} claims per series, warm pool of {WARM} (kwok)")
        for burst, r in results.items():
            print(row(f"burst {burst:>2}: adoption", r["adopt"], True))
            print(row(f"burst {burst:>2}: claim Ready", r["ready"], True))
            print(
                f"{'':<28} CPU per claim (incl. its refill): operator {cpu[burst][0]:.1f} ms, "
                f"kube-apiserver {cpu[burst][1]:.1f} ms"
            )
        print(row("floor: ConfigMap POST->watch", base, False))
        print(f"refill 0 -> 100 Ready warm Pods: {refill_s:.2f} s")
        print(f"load average during the run (1 min, at the end): {os.getloadavg()[0]:.1f}")
        print(
            "mean adoption over all series: "
            f"{statistics.mean(v for r in results.values() for v in r['adopt']):.1f} ms"
        )
        rec.stop = True
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        say(f"operator log: {log}")
        controlplane.stop(cp)


if __name__ == "__main__":
    sys.exit(main())
