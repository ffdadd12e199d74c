"""`make demo`: Berth doing its main job, end to end, on this machine.

1. The runtime: the example agent served by `berth-runtime` on real Postgres and
   Redis, driven by the official langgraph-sdk client (stream, approval pause, resume).
2. The operator: a local Kubernetes control plane, the CRDs, the operator, and the
   example AgentDeployment reconciled until Ready.
"""

from __future__ import annotations

import sys
import time

from examples.demo_operator import run_operator_demo
from examples.demo_runtime import run_runtime_demo
from tests.support import controlplane


def main() -> int:
    t0 = time.monotonic()
    print("=== Part 1: the runtime serves an agent to langgraph-sdk ===", flush=True)
    run_runtime_demo()
    print("\n=== Part 2: the operator deploys it on Kubernetes ===", flush=True)
    cp = controlplane.start()
    try:
        run_operator_demo(cp.kubeconfig)
    finally:
        controlplane.stop(cp)
    print(f"\n>> demo finished in {time.monotonic() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
