"""The real-node half of `make demo`: Berth installed with `helm install` on a real kubelet
node, the example AgentDeployment's Pods running from Berth's images, and the agent
answering langgraph-sdk from its runtime Pod.

Builds the images (cached by source hash), starts the node (tests/support/node.py), pushes
the images to a local registry, installs the chart, applies examples/agentdeployment.yaml,
waits for Ready, then holds the same conversation as the runtime half through
`kubectl port-forward` to the Service. Everything is removed afterwards.
"""

from __future__ import annotations

import asyncio
import time

from examples.demo_runtime import converse
from tests.e2e.access import example_manifest, port_forward
from tests.support import release

NAMESPACE = "agents"


def _say(msg: str) -> None:
    print(f">> {msg}", flush=True)


def run_node_demo() -> str:
    """Returns the agent's final answer, computed in the runtime Pod."""
    with release.installed() as done:
        cp = done.node.cp
        phases = ", ".join(f"{k} {v:.0f}s" for k, v in done.seconds.items())
        _say(f"installed: {phases}")
        print(cp.kubectl("-n", release.OPERATOR_NS, "get", "pods", "-o", "wide").stdout)
        t0 = time.monotonic()
        _say(f"kubectl apply -f examples/agentdeployment.yaml (namespace {NAMESPACE})")
        cp.kubectl("create", "namespace", NAMESPACE)
        cp.kubectl("apply", "-f", "-", input=example_manifest(NAMESPACE))
        _say("waiting for AgentDeployment example to be Ready (Postgres initialises its volume)")
        cp.kubectl(
            "-n", NAMESPACE, "wait", "--for=condition=Ready", "agentdeployment/example",
            "--timeout=300s",
        )  # fmt: skip
        _say(f"Ready in {time.monotonic() - t0:.0f}s; its Pods on the real node:")
        print(cp.kubectl("-n", NAMESPACE, "get", "pods", "-o", "wide").stdout)
        _say("talking to it through `kubectl port-forward svc/example 8000`")
        with port_forward(cp, NAMESPACE, "svc/example", 8000) as url:
            answer = asyncio.run(converse(url))
        worker = cp.kubectl(
            "-n", NAMESPACE, "logs", "deployment/example-worker", "--tail=3"
        ).stdout.strip()
        _say(f"the worker Pod's last log lines:\n{worker}")
        return answer
