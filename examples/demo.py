"""`make demo`: Berth doing its main job, end to end, on this machine.

1. The runtime: the example agent served by `berth-runtime` on real Postgres and
   Redis, driven by the official langgraph-sdk client (stream, approval pause, resume).
2. For real: `helm install` on a real kubelet node, the example AgentDeployment's Pods
   from Berth's images, and the agent answering from its runtime Pod.
3. The operator's warm sandbox pool and claims on a local control plane (kwok nodes).
"""

from __future__ import annotations

import sys
import time

from examples.demo_node import run_node_demo
from examples.demo_operator import run_operator_demo
from examples.demo_runtime import run_runtime_demo
from tests.support import controlplane


def main() -> int:
    t0 = time.monotonic()
    print("=== Part 1: the runtime serves an agent to langgraph-sdk ===", flush=True)
    run_runtime_demo()
    print("\n=== Part 2: helm install on a real node; the agent answers from its Pod ===")
    answer = run_node_demo()
    if "Refund" not in answer:
        raise RuntimeError(f"the runtime Pod answered unexpectedly: {answer!r}")
    print("\n=== Part 3: the operator on kwok nodes: deploy, warm sandbox pool ===", flush=True)
    cp = controlplane.start()
    try:
        run_operator_demo(cp.kubeconfig)
    finally:
        controlplane.stop(cp)
    print(f"\n>> demo finished in {time.monotonic() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
