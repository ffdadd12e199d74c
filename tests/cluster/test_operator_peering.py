"""Two operator replicas never both act: kopf peering pauses all but the highest priority."""

from __future__ import annotations

import json
import time

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


def _children(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    """kind/name -> uid of every object the operator made for AgentDeployment `name`."""
    kinds = "deployments,statefulsets,services,configmaps,secrets,serviceaccounts"
    out = kubectl(
        "get", kinds, "-n", namespace, "-l", f"berth.dev/agentdeployment={name}", "-o", "json"
    ).stdout
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["uid"]
        for o in json.loads(out)["items"]
    }


def test_a_killed_active_replica_is_taken_over_and_nothing_is_made_twice(
    berth_crds: None, kubectl: Kubectl, namespace: str, kube_env: dict[str, str]
) -> None:
    """SIGKILL leaves the active replica's peering record behind: the standby waits for it
    to expire (its lifetime), then reconciles what arrived meanwhile; the objects the dead
    replica made stay the same objects (same uids) and none is made twice."""
    external_secrets(kubectl, namespace)
    lifetime = "10"
    high = start_operator(kube_env, namespace, "--priority", "200", "--peering-lifetime", lifetime)
    low = start_operator(kube_env, namespace, "--priority", "100", "--peering-lifetime", lifetime)
    try:
        wait_until(lambda: peers(kubectl, namespace) == {100, 200}, 30, "both peering records")
        apply(kubectl, namespace, agent("first"))
        wait_ready(kubectl, namespace, "first")
        before = _children(kubectl, namespace, "first")
        assert before and low.count("apply ") == 0, low.log()

        apply(kubectl, namespace, agent("second"))
        high.wait_for_log("second", timeout=30)  # it has started on it ...
        high.proc.kill()  # ... and dies mid-reconcile, without withdrawing its record
        high.proc.wait()
        killed = time.monotonic()
        low.wait_for_log("Resuming operations after the pause", timeout=90)
        took_over = time.monotonic() - killed
        wait_ready(kubectl, namespace, "second", timeout=90)
        low.wait_for_log("reconciled " + namespace + "/second", timeout=60)
        print(f"standby took over {took_over:.1f} s after the SIGKILL (lifetime {lifetime} s)")
        assert took_over < 3 * int(lifetime) + 15, took_over

        apply(kubectl, namespace, agent("third"))
        wait_ready(kubectl, namespace, "third")
        time.sleep(6)  # two resync periods of the survivor over every object
        assert _children(kubectl, namespace, "first") == before
        second = _children(kubectl, namespace, "second")
        assert second.keys() == {k.replace("first", "second") for k in before}, second
    finally:
        delete_all_agentdeployments(kubectl, namespace)
        high.stop()
        low.stop()
