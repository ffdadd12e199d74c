"""Operator at scale: N AgentDeployments created at once on the local control plane.

Prints the time until every one is Ready, the reconcile passes per second, the
operator's writes and its peak RSS (VmHWM). The peer, run in the same session: the
same child objects (rendered by the same pure functions, one SSA apply with kubectl)
created directly without an operator, timed until their Deployments are available.
The ratio says what the operator costs on top of the control plane's own work.

    .venv/bin/python bench/operator_scale.py            # N=300
    BERTH_BENCH_N=50 .venv/bin/python bench/operator_scale.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

from berth_operator.api.agentdeployment import parse_spec  # noqa: E402
from berth_operator.render.desired import Observed, render  # noqa: E402
from berth_operator.render.images import ImageDefaults  # noqa: E402
from berth_operator.render.meta import Subject  # noqa: E402

from tests.support import controlplane  # noqa: E402

N = int(os.environ.get("BERTH_BENCH_N", "300"))
BIN = Path(sys.executable).parent
SPEC: dict[str, Any] = {
    "image": "berth-runtime:dev",
    "graphs": {"inline": {"graphs": {"agent": "/app/agent.py:graph"}}},
    "postgres": {"external": {"secretName": "pg"}},
    "redis": {"external": {"secretName": "rd"}},
}
SECRETS = [
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pg"},
        "stringData": {"uri": "postgresql://u:p@db:5432/x"},
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "rd"},
        "stringData": {"uri": "redis://r:6379/0"},
    },
]


def say(msg: str) -> None:
    print(f">> {msg}", flush=True)


def kubectl(env: dict[str, str], *args: str, input: str | None = None) -> str:
    r = subprocess.run(
        [str(BIN / "kubectl"), *args], env=env, input=input, capture_output=True, text=True
    )
    if r.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:3])}: {r.stderr[-2000:]}")
    return r.stdout


def namespace(env: dict[str, str], name: str) -> None:
    kubectl(env, "create", "namespace", name)
    kubectl(env, "apply", "-n", name, "-f", "-", input=yaml.safe_dump_all(SECRETS))


def wait_all(env: dict[str, str], what: str, ns: str, ready: Any, t0: float) -> float:
    last = 0.0
    while True:
        items = json.loads(kubectl(env, "get", what, "-n", ns, "-o", "json"))["items"]
        done = sum(1 for i in items if ready(i))
        now = time.monotonic()
        if done >= N:
            return now - t0
        if now - last > 5:
            say(f"   {done}/{N} ready after {now - t0:.1f}s")
            last = now
        if now - t0 > 900:
            raise TimeoutError(f"only {done}/{N} ready after 900s")
        time.sleep(2)


def deployment_ready(d: dict[str, Any]) -> bool:
    st = d.get("status") or {}
    want = d["spec"].get("replicas", 1)
    return bool(
        st.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and st.get("updatedReplicas", 0) == want
        and st.get("readyReplicas", 0) == want
    )


def agd_ready(a: dict[str, Any]) -> bool:
    for c in (a.get("status") or {}).get("conditions") or ():
        if c["type"] == "Ready":
            return bool(
                c["status"] == "True" and c.get("observedGeneration") == a["metadata"]["generation"]
            )
    return False


def direct_children(ns: str) -> list[dict[str, Any]]:
    spec = parse_spec(SPEC)
    secrets = {"data": {"uri": "eA=="}}
    docs = []
    for i in range(N):
        subject = Subject(name=f"a{i:04d}", namespace=ns, uid=f"uid-{i}")
        observed = Observed(postgres_secret=secrets, redis_secret=secrets)
        desired = render(subject, spec, observed, {}, ImageDefaults())
        for obj in desired.objects:
            obj["metadata"].pop("ownerReferences", None)  # no owner here: GC would delete them
            docs.append(obj)
    return docs


def run_peer(env: dict[str, str]) -> tuple[float, int]:
    ns = "bench-direct"
    namespace(env, ns)
    docs = direct_children(ns)
    say(
        f"peer: {len(docs)} child objects of {N} agents, applied directly "
        "(kubectl apply --server-side)"
    )
    t0 = time.monotonic()
    kubectl(env, "apply", "--server-side", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
    elapsed = wait_all(env, "deployments", ns, deployment_ready, t0)
    return elapsed, len(docs)


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_operator(env: dict[str, str]) -> dict[str, Any]:
    ns = "bench-operator"
    namespace(env, ns)
    log = Path(tempfile.mkstemp(prefix="berth-bench-operator-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "berth-operator"), "run", "--namespace", ns, "--resync-seconds", "600"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        while "Initial authentication has finished" not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.1)
        time.sleep(1)
        idle_kib = vm_hwm_kib(proc.pid)
        crs = [
            {
                "apiVersion": "berth.dev/v1alpha1",
                "kind": "AgentDeployment",
                "metadata": {"name": f"a{i:04d}"},
                "spec": SPEC,
            }
            for i in range(N)
        ]
        say(f"operator: creating {N} AgentDeployments at once (kubectl create)")
        t0 = time.monotonic()
        kubectl(env, "create", "-n", ns, "-f", "-", input=yaml.safe_dump_all(crs))
        created = time.monotonic() - t0
        elapsed = wait_all(env, "agentdeployments", ns, agd_ready, t0)
        peak_kib = vm_hwm_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
    text = log.read_text(errors="replace")
    m = re.search(r"stats: passes=(\d+) writes=(\d+)", text)
    passes, writes = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return {
        "elapsed": elapsed,
        "create": created,
        "passes": passes,
        "writes": writes,
        "peak_kib": peak_kib,
        "idle_kib": idle_kib,
        "log": str(log),
    }


def main() -> int:
    cp = controlplane.start()
    try:
        env = cp.env()
        kubectl(env, "apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl(env, "wait", "--for=condition=Established", "crd/agentdeployments.berth.dev")
        peer_s, objects = run_peer(env)
        say(f"peer: all {N} Deployments available after {peer_s:.1f}s")
        op = run_operator(env)
    finally:
        controlplane.stop(cp)
    rate = op["passes"] / op["elapsed"] if op["elapsed"] else 0.0
    print()
    print(f"AgentDeployments                      {N}")
    print(
        f"operator: all Ready after             {op['elapsed']:.1f} s "
        f"(kubectl create took {op['create']:.1f} s)"
    )
    print(f"operator: reconcile passes            {op['passes']}  ({rate:.1f}/s)")
    print(
        f"operator: API writes                  {op['writes']}  ({op['writes'] / N:.1f} per agent)"
    )
    print(
        f"operator: peak RSS (VmHWM)            {op['peak_kib'] / 1024:.0f} MiB "
        f"(idle {op['idle_kib'] / 1024:.0f} MiB)"
    )
    print(
        f"peer: same {objects} objects applied directly, Deployments available after {peer_s:.1f} s"
    )
    print(f"ratio operator / direct apply         {op['elapsed'] / peer_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
