"""Helpers of the sandbox cluster tests: pools, claims, Pods, and an operator fixture that
cleans up pools (their finalizer) while the operator still runs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    OperatorProcess,
    apply,
    berth_crds,
    delete_all,
    start_operator,
)

POOL = "sandboxpool"
CLAIM = "sandboxclaim"


@pytest.fixture(scope="session")
def sandbox_crds(berth_crds: None, kubectl: Kubectl) -> None:
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/sandboxpools.berth.dev",
        "crd/sandboxclaims.berth.dev",
        "--timeout=30s",
    )


def cleanup_sandboxes(kubectl: Kubectl, namespace: str) -> None:
    """Delete claims and pools while the operator runs (pools carry kopf's finalizer)."""
    delete_all(kubectl, namespace, f"{CLAIM},{POOL}")


@pytest.fixture
def sandbox_operator(
    sandbox_crds: None, kube_env: dict[str, str], kubectl: Kubectl, namespace: str
) -> Iterator[OperatorProcess]:
    op = start_operator(kube_env, namespace)
    try:
        yield op
    finally:
        cleanup_sandboxes(kubectl, namespace)
        op.stop()


def pool(name: str, *, replicas: int = 2, max_size: int = 10, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template": {"image": "ghcr.io/berth-dev/sandbox-python:3.12", "command": ["sleep", "inf"]},
        "replicas": replicas,
        "maxSize": max_size,
    }
    body.update(spec)
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "SandboxPool",
        "metadata": {"name": name},
        "spec": body,
    }


def claim(name: str, pool_name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "SandboxClaim",
        "metadata": {"name": name},
        "spec": {"poolRef": {"name": pool_name}, **spec},
    }


def get_json(kubectl: Kubectl, namespace: str, *what: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(kubectl("get", *what, "-n", namespace, "-o", "json").stdout)
    return data


def pods(kubectl: Kubectl, namespace: str, selector: str) -> list[dict[str, Any]]:
    return list(get_json(kubectl, namespace, "pods", "-l", selector)["items"])


def live(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def warm_pods(kubectl: Kubectl, namespace: str, pool_name: str) -> list[dict[str, Any]]:
    return live(
        pods(kubectl, namespace, f"berth.dev/pool={pool_name},berth.dev/sandbox-state=warm")
    )


def cond(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (body.get("status") or {}).get("conditions") or ():
        if c["type"] == kind:
            return dict(c)
    return {}


def poll(
    fn: Callable[[], Any], timeout: float = 60, what: str = "condition", every: float = 0.2
) -> Any:
    """Call ``fn`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def wait_pool_ready(
    kubectl: Kubectl, namespace: str, name: str, replicas: int, timeout: float = 90
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = get_json(kubectl, namespace, POOL, name)
        st = body.get("status") or {}
        ok = (
            cond(body, "Ready").get("status") == "True"
            and st.get("readyReplicas") == replicas
            and st.get("observedGeneration") == body["metadata"]["generation"]
            and len([p for p in warm_pods(kubectl, namespace, name) if ready(p)]) == replicas
        )
        return body if ok else None

    result: dict[str, Any] = poll(check, timeout, f"pool {name} with {replicas} Ready warm Pods")
    return result


def wait_claim(
    kubectl: Kubectl, namespace: str, name: str, reason: str = "Bound", timeout: float = 60
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = get_json(kubectl, namespace, CLAIM, name)
        r = cond(body, "Ready")
        if reason == "Bound":
            return body if r.get("status") == "True" else None
        return body if r.get("reason") == reason else None

    result: dict[str, Any] = poll(check, timeout, f"claim {name} {reason}")
    return result


__all__ = [
    "CLAIM",
    "POOL",
    "apply",
    "berth_crds",
    "claim",
    "cleanup_sandboxes",
    "cond",
    "get_json",
    "live",
    "pods",
    "poll",
    "pool",
    "ready",
    "sandbox_crds",
    "sandbox_operator",
    "wait_claim",
    "wait_pool_ready",
    "warm_pods",
]
