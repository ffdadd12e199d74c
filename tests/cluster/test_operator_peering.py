"""Two operator replicas never both act: kopf peering pauses all but the highest priority."""

from __future__ import annotations

import json

import pytest

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    OperatorProcess,
    agent,
    apply,
    berth_crds,
    delete_all_agentdeployments,
    external_secrets,
    start_operator,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.cluster


def peers(kubectl: Kubectl, namespace: str) -> set[int]:
    """Priorities of the live operator records in the namespace's peering object."""
    out = kubectl("get", "kopfpeering", "berth", "-n", namespace, "-o", "json", check=False)
    if out.returncode != 0:
        return set()
    status = json.loads(out.stdout).get("status") or {}
    return {int(v["priority"]) for v in status.values() if isinstance(v, dict)}


__all__ = ["berth_crds"]


def test_only_the_highest_priority_replica_reconciles(
    berth_crds: None, kubectl: Kubectl, namespace: str, kube_env: dict[str, str]
) -> None:
    external_secrets(kubectl, namespace)
    high = start_operator(kube_env, namespace, "--priority", "200")
    low = start_operator(kube_env, namespace, "--priority", "100")
    try:
        wait_until(lambda: peers(kubectl, namespace) == {100, 200}, 30, "both peering records")
        apply(kubectl, namespace, agent("first"))
        wait_ready(kubectl, namespace, "first")
        assert high.count("apply ") > 0
        assert low.count("apply ") == 0 and low.count("patch status") == 0, low.log()

        high.stop()  # a graceful exit withdraws its peering record at once
        wait_until(lambda: peers(kubectl, namespace) == {100}, 30, "the high record gone")
        apply(kubectl, namespace, agent("second"))
        wait_ready(kubectl, namespace, "second")
        assert low.count("apply ConfigMap") >= 1, low.log()
    finally:
        delete_all_agentdeployments(kubectl, namespace)
        high.stop()
        low.stop()


def test_all_namespaces_mode_uses_cluster_peering(
    berth_crds: None, kubectl: Kubectl, namespace: str, kube_env: dict[str, str]
) -> None:
    external_secrets(kubectl, namespace)
    op = OperatorProcess(kube_env, "--all-namespaces", "--resync-seconds", "3")
    try:
        op.wait_for_log("Initial authentication has finished", timeout=30)
        apply(kubectl, namespace, agent("everywhere"))
        wait_ready(kubectl, namespace, "everywhere")
        out = kubectl("get", "clusterkopfpeering", "berth", "-o", "json").stdout
        assert json.loads(out).get("status"), out  # this replica's record
    finally:
        delete_all_agentdeployments(kubectl, namespace)
        op.stop()
        kubectl("delete", "clusterkopfpeering", "berth", "--ignore-not-found", check=False)
