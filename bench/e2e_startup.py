"""From `kubectl apply` of an AgentDeployment to the first answer from its Pod, on the real
node with warm images; runtime Pod memory idle and after 100 runs; image sizes.

Installs Berth as the e2e tier does (tests/support/release.py: images, real kubelet node,
local registry, `helm install`), then:

- floor, measured in the same run: a bare Postgres Pod (the same image, on a PVC of the
  same class) from create to Ready. Postgres initialising its volume is most of an
  AgentDeployment's start, so the ratio says what Berth adds on top;
- Berth: examples/agentdeployment.yaml applied, each phase timed from the apply (every Pod
  scheduled, its containers started, Ready; the AgentDeployment Ready), then the first
  answer through `kubectl port-forward` and langgraph-sdk (`runs.wait`, a calculator
  question the worker Pod computes);
- memory: resident set of the server and worker containers' processes (read from /proc
  on the host, the node's containers are host processes) idle after start, and after 100
  runs (10 clients);
- the size of each image (uncompressed).

Goals (issue 15): first answer <= 60 s warm, runtime Pod RSS <= 250 MiB.

    .venv/bin/python bench/e2e_startup.py [--runs 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langgraph_sdk import get_client  # noqa: E402

from tests.e2e.access import example_manifest, port_forward  # noqa: E402
from tests.support import node, release  # noqa: E402
from tests.support.controlplane import ControlPlane  # noqa: E402

NAMESPACE = "bench"
FIRST_ANSWER_GOAL_S = 60.0
RSS_GOAL_MIB = 250.0
COMPONENTS = {
    "postgres": "database",
    "redis": "cache",
    "server": "server",
    "worker": "worker",
}


def get_json(cp: ControlPlane, *args: str) -> Any:
    return json.loads(cp.kubectl(*args, "-o", "json").stdout)


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def is_started(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return bool(statuses) and all("running" in s.get("state", {}) for s in statuses)


def floor_postgres(cp: ControlPlane, image: str) -> float:
    """A bare Postgres Pod on a PVC, create to Ready: the floor of any start with a database."""
    docs = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "floor-pg", "namespace": NAMESPACE},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "standard",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "floor-pg", "namespace": NAMESPACE},
            "spec": {
                "containers": [
                    {
                        "name": "postgres",
                        "image": image,
                        "env": [
                            {"name": "POSTGRES_PASSWORD", "value": "bench"},
                            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                        ],
                        "readinessProbe": {
                            "exec": {"command": ["pg_isready", "-U", "postgres"]},
                            "periodSeconds": 1,
                        },
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
                    }
                ],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "floor-pg"}}],
            },
        },
    ]
    t0 = time.monotonic()
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    while not is_ready(get_json(cp, "-n", NAMESPACE, "get", "pod", "floor-pg")):
        if time.monotonic() - t0 > 300:
            raise TimeoutError("the bare Postgres Pod was not Ready in 300 s")
        time.sleep(0.25)
    took = time.monotonic() - t0
    cp.kubectl("-n", NAMESPACE, "delete", "pod,pvc", "floor-pg", "--wait=true")
    return took


def start_berth(cp: ControlPlane) -> dict[str, float]:
    """Seconds from the apply to each phase of each component, and to Ready."""
    t0 = time.monotonic()
    cp.kubectl("apply", "-f", "-", input=example_manifest(NAMESPACE))
    seen: dict[str, float] = {}
    while "agentdeployment_ready" not in seen:
        now = time.monotonic() - t0
        assert now < 300, f"not Ready in 300 s: {seen}"
        pods = get_json(cp, "-n", NAMESPACE, "get", "pods", "-l", "berth.dev/agentdeployment")
        for name, component in COMPONENTS.items():
            mine = [
                p
                for p in pods["items"]
                if p["metadata"]["labels"].get("app.kubernetes.io/component") == component
            ]
            if mine and all(p["spec"].get("nodeName") for p in mine):
                seen.setdefault(f"{name}_scheduled", now)
            if mine and all(is_started(p) for p in mine):
                seen.setdefault(f"{name}_started", now)
            if mine and all(is_ready(p) for p in mine):
                seen.setdefault(f"{name}_ready", now)
        ad = get_json(cp, "-n", NAMESPACE, "get", "agentdeployment", "example")
        conditions = ad.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            seen["agentdeployment_ready"] = now
        time.sleep(0.25)
    return seen


QUESTION: dict[str, Any] = {"messages": [{"role": "user", "content": "What is 12 * 12?"}]}


async def ask(url: str) -> str:
    client = get_client(url=url)
    out = await client.runs.wait(None, "agent", input=QUESTION)
    assert isinstance(out, dict)
    answer = str(out["messages"][-1]["content"])
    assert "144" in answer, answer
    return answer


async def many_runs(url: str, total: int, clients: int = 10) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def one_client() -> None:
        while not queue.empty():
            queue.get_nowait()
            await ask(url)

    await asyncio.gather(*(one_client() for _ in range(clients)))


def process_tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        todo.extend(int(c) for c in children)
    return total


def runtime_rss(n: node.Node, cp: ControlPlane) -> dict[str, float]:
    """MiB resident per runtime container (server and worker Pods)."""
    tasks = {}
    for line in n.ctr("task", "ls").splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            tasks[parts[0]] = int(parts[1])
    out: dict[str, float] = {}
    for role in ("server", "worker"):
        selector = f"berth.dev/agentdeployment=example,app.kubernetes.io/component={role}"
        pods = get_json(cp, "-n", NAMESPACE, "get", "pods", "-l", selector)["items"]
        for i, pod in enumerate(pods):
            cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
            out[f"{role}{i}"] = process_tree_rss(tasks[cid]) / 2**20
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    with release.installed() as done:
        cp = done.node.cp
        result["install_seconds"] = done.seconds
        cp.kubectl("create", "namespace", NAMESPACE)
        floor = floor_postgres(cp, f"{node.REGISTRY}/berth-test-postgres:"
                               f"{done.images['berth-test-postgres'].tag}")  # fmt: skip
        t0 = time.monotonic()
        phases = start_berth(cp)
        with port_forward(cp, NAMESPACE, "svc/example", 8000) as url:
            asyncio.run(ask(url))
            first_answer = time.monotonic() - t0
            time.sleep(5)
            idle = runtime_rss(done.node, cp)
            t1 = time.monotonic()
            asyncio.run(many_runs(url, args.runs))
            runs_seconds = time.monotonic() - t1
            after = runtime_rss(done.node, cp)
        result.update(
            floor_postgres_ready_s=floor,
            phases_s=phases,
            first_answer_s=first_answer,
            rss_idle_mib=idle,
            rss_after_runs_mib=after,
            runs=args.runs,
            runs_seconds=runs_seconds,
            image_mb={k: v.image_size_bytes / 1e6 for k, v in done.images.items()},
        )
    print("== e2e startup on the real node (warm images; Postgres durable as shipped) ==")
    print(f"install: {', '.join(f'{k} {v:.1f}s' for k, v in done.seconds.items())}")
    for phase, at in sorted(phases.items(), key=lambda kv: kv[1]):
        print(f"  {phase:26} {at:6.1f} s after apply")
    ratio = first_answer / floor
    print(
        f"first answer {first_answer:.1f} s (goal <= {FIRST_ANSWER_GOAL_S:.0f} s: "
        f"{'met' if first_answer <= FIRST_ANSWER_GOAL_S else 'MISSED'}); bare Postgres Pod "
        f"Ready {floor:.1f} s; ratio berth/bare-postgres {ratio:.2f}x"
    )
    worst = max([*idle.values(), *after.values()])
    print(
        f"runtime RSS idle {', '.join(f'{k} {v:.0f}' for k, v in idle.items())} MiB; after "
        f"{args.runs} runs ({runs_seconds:.1f} s) "
        f"{', '.join(f'{k} {v:.0f}' for k, v in after.items())} MiB (goal <= {RSS_GOAL_MIB:.0f}"
        f" MiB: {'met' if worst <= RSS_GOAL_MIB else 'MISSED'})"
    )
    sizes = ", ".join(f"{k} {v:.1f}" for k, v in sorted(result["image_mb"].items()))
    print(f"image sizes (MB, uncompressed): {sizes}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
