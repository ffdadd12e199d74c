"""The operator's Prometheus metrics (`berth-operator run --metrics-port`).

Reconcile passes by kind and result, and each SandboxPool's warm, claimed and maximum Pod
counts as of its last pass. The chart's dashboard and PrometheusRule use these names.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "berth_operator_reconciles",
    "Reconcile passes, by kind of custom resource and result (ok or error)",
    ["kind", "result"],
    registry=REGISTRY,
)
POOL_WARM = Gauge(
    "berth_sandboxpool_warm_pods",
    "Ready warm (unclaimed) Pods of a SandboxPool",
    ["namespace", "sandboxpool"],
    registry=REGISTRY,
)
POOL_CLAIMED = Gauge(
    "berth_sandboxpool_claimed_pods",
    "Pods of a SandboxPool bound to claims",
    ["namespace", "sandboxpool"],
    registry=REGISTRY,
)
POOL_MAX = Gauge(
    "berth_sandboxpool_max_pods",
    "A SandboxPool's maxSize: most Pods, warm plus claimed",
    ["namespace", "sandboxpool"],
    registry=REGISTRY,
)
_POOL_GAUGES = (POOL_WARM, POOL_CLAIMED, POOL_MAX)

for _kind in ("AgentDeployment", "SandboxPool"):  # series exist from the start: rate() works
    for _result in ("ok", "error"):
        RECONCILES.labels(_kind, _result)


def reconciled(kind: str, ok: bool) -> None:
    RECONCILES.labels(kind, "ok" if ok else "error").inc()


def pool_observed(namespace: str, name: str, warm: int, claimed: int, max_size: int) -> None:
    POOL_WARM.labels(namespace, name).set(warm)
    POOL_CLAIMED.labels(namespace, name).set(claimed)
    POOL_MAX.labels(namespace, name).set(max_size)


def pool_gone(namespace: str, name: str) -> None:
    for gauge in _POOL_GAUGES:
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve /metrics on a background thread."""
    start_http_server(port, addr=addr, registry=REGISTRY)
