"""Conditions and status computed from observed children."""

from __future__ import annotations

from typing import Any

from berth_operator.render.desired import Problem
from berth_operator.render.names import ChildNames, ChildRef
from berth_operator.render.status import pods_to_inspect, status, status_patch

from tests.unit.operator.factories import EXTERNAL, rendered, spec, subject

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"
N = ChildNames("demo")


def deploy(
    gen: int = 2,
    observed: int = 2,
    want: int = 2,
    updated: int = 2,
    ready: int = 2,
    total: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"generation": gen},
        "spec": {"replicas": want},
        "status": {
            "observedGeneration": observed,
            "replicas": updated if total is None else total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            **extra,
        },
    }


def children() -> dict[ChildRef, Any]:
    return {
        ChildRef("apps/v1", "Deployment", N.server): deploy(),
        ChildRef("apps/v1", "Deployment", N.redis): deploy(want=1, updated=1, ready=1),
        ChildRef("apps/v1", "StatefulSet", N.postgres): deploy(want=1, updated=1, ready=1),
        ChildRef("v1", "PersistentVolumeClaim", N.postgres_pvc): {"status": {"phase": "Bound"}},
    }


def conds(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in st["conditions"]}


def test_all_ready() -> None:
    st = status(subject(), spec(), children(), [], None, NOW, rendered().wiring)
    c = conds(st)
    assert [x["type"] for x in st["conditions"]] == [
        "Ready",
        "Reconciling",
        "Stalled",
        "DatabaseReady",
        "RedisReady",
        "ServerReady",
        "WorkersReady",
    ]
    assert c["Ready"]["status"] == "True" and c["Ready"]["reason"] == "Available"
    assert c["Reconciling"]["status"] == "False" and c["Stalled"]["status"] == "False"
    assert all(x["observedGeneration"] == 3 for x in st["conditions"])
    assert st["observedGeneration"] == 3
    assert st["endpoint"] == "http://demo.ns1.svc.cluster.local:8000"
    assert st["selector"] == "berth.dev/agentdeployment=demo,app.kubernetes.io/component=server"
    assert st["replicas"] == 2 and st["readyReplicas"] == 2
    assert st["database"] == {"secretName": "demo-credentials", "key": "database-uri"}


def test_rollout_in_progress_is_reconciling() -> None:
    for d in (deploy(observed=1), deploy(updated=1), deploy(total=3), deploy(ready=1)):
        ch = children()
        ch[ChildRef("apps/v1", "Deployment", N.server)] = d
        st = status(subject(), spec(), ch, [], None, NOW)
        c = conds(st)
        assert c["Ready"]["status"] == "False"
        assert c["Reconciling"]["status"] == "True"
        assert c["Stalled"]["status"] == "False"
        assert c["ServerReady"]["reason"] in {"RolloutInProgress", "PodsNotReady"}


def test_pending_volume_blocks_database() -> None:
    ch = children()
    ch[ChildRef("v1", "PersistentVolumeClaim", N.postgres_pvc)] = {"status": {"phase": "Pending"}}
    c = conds(status(subject(), spec(), ch, [], None, NOW))
    assert c["DatabaseReady"]["reason"] == "VolumePending"
    assert c["Ready"]["reason"] == "VolumePending"


def test_progress_deadline_exceeded_is_stalled() -> None:
    bad = deploy(
        ready=0,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "slow",
            }
        ],
    )
    ch = children()
    ch[ChildRef("apps/v1", "Deployment", N.server)] = bad
    c = conds(status(subject(), spec(), ch, [], None, NOW))
    assert c["Stalled"]["status"] == "True"
    assert c["Stalled"]["reason"] == "ProgressDeadlineExceeded"
    assert c["Reconciling"]["status"] == "False"


def test_problems_stall_with_their_reason() -> None:
    p = Problem("DatabaseReady", "SecretNotFound", "postgres.external Secret 'pg' not found")
    c = conds(status(subject(), spec(**EXTERNAL), {}, [p], None, NOW))
    assert c["Stalled"]["status"] == "True" and c["Stalled"]["reason"] == "SecretNotFound"
    assert c["Ready"]["status"] == "False" and "not found" in c["Ready"]["message"]
    assert c["DatabaseReady"]["reason"] == "SecretNotFound"


def test_invalid_spec() -> None:
    st = status(subject(), None, {}, [], None, NOW, invalid="spec.image: required")
    c = conds(st)
    assert c["Stalled"]["reason"] == "InvalidSpec" and c["Ready"]["status"] == "False"
    assert c["ServerReady"]["status"] == "Unknown"
    assert "endpoint" not in st


def test_transition_time_kept_while_status_unchanged() -> None:
    first = status(subject(), spec(), children(), [], None, NOW)
    again = status(subject(), spec(), children(), [], first, LATER)
    assert again == first
    assert status_patch(again, first) is None
    ch = children()
    ch[ChildRef("apps/v1", "Deployment", N.server)] = deploy(ready=1)
    flipped = status(subject(), spec(), ch, [], first, LATER)
    c = conds(flipped)
    assert c["Ready"]["lastTransitionTime"] == LATER
    assert c["DatabaseReady"]["lastTransitionTime"] == NOW


def test_status_patch_removes_vanished_keys_and_leaves_kopf_alone() -> None:
    old = {"workers": {"replicas": 1}, "kopf": {"x": 1}, "endpoint": "a"}
    assert status_patch({"endpoint": "a"}, old) == {"endpoint": "a", "workers": None}
    assert status_patch({"endpoint": "a"}, {"endpoint": "a", "kopf": {}}) is None


def test_workers_condition_in_split_mode() -> None:
    s = spec(workers={"enabled": True})
    ch = children()
    ch[ChildRef("apps/v1", "Deployment", N.worker)] = deploy(want=1, updated=1, ready=0)
    st = status(subject(), s, ch, [], None, NOW)
    assert conds(st)["WorkersReady"]["reason"] == "PodsNotReady"
    assert st["workers"] == {"replicas": 1, "readyReplicas": 0}


def _stuck_pod(image: str, reason: str = "ImagePullBackOff") -> dict[str, Any]:
    """A server Pod as the kubelet reports a failing pull (see test_pod_health)."""
    return {
        "metadata": {"name": "demo-server-5c9-x1", "labels": {"app.kubernetes.io/name": "x"}},
        "spec": {"containers": [{"name": "runtime", "image": image}]},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "runtime",
                    "image": image,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {
                        "waiting": {
                            "reason": reason,
                            "message": f'Back-off pulling image "{image}"',
                        }
                    },
                }
            ],
        },
    }


def _server_with_image(image: str, **rollout: Any) -> dict[str, Any]:
    d = deploy(**rollout)
    d["spec"]["selector"] = {"matchLabels": {"berth.dev/agentdeployment": "demo", "c": "server"}}
    d["spec"]["template"] = {"spec": {"containers": [{"name": "runtime", "image": image}]}}
    return d


def test_a_stuck_pod_stalls_its_component_with_the_kubelet_reason() -> None:
    ch = children()
    ch[ChildRef("apps/v1", "Deployment", N.server)] = _server_with_image("nope:1", ready=0)
    pods = {N.server: [_stuck_pod("nope:1")]}
    st = status(subject(), spec(), ch, [], None, NOW, rendered().wiring, pods=pods)
    c = conds(st)
    assert c["ServerReady"]["status"] == "False"
    assert c["ServerReady"]["reason"] == "ImagePullBackOff"
    assert c["Stalled"]["status"] == "True" and c["Stalled"]["reason"] == "ImagePullBackOff"
    assert c["Ready"]["status"] == "False" and c["Ready"]["reason"] == "ImagePullBackOff"
    assert c["Reconciling"]["status"] == "False" and c["Reconciling"]["reason"] == "Stalled"
    message = c["Stalled"]["message"]
    assert "Deployment demo-server" in message and "'runtime'" in message
    assert "'nope:1'" in message
    # The same observation again: nothing to write (the second pass writes nothing).
    again = status(subject(), spec(), ch, [], st, LATER, rendered().wiring, pods=pods)
    assert status_patch(again, st) is None


def test_a_ready_workload_ignores_its_pods_and_a_fixed_image_unstalls() -> None:
    ch = children()
    ch[ChildRef("apps/v1", "Deployment", N.server)] = _server_with_image("good:2", ready=1)
    old = {N.server: [_stuck_pod("nope:1")]}  # the last Pod of the bad revision, going away
    c = conds(status(subject(), spec(), ch, [], None, NOW, pods=old))
    assert c["Stalled"]["status"] == "False" and c["ServerReady"]["reason"] == "PodsNotReady"
    ch[ChildRef("apps/v1", "Deployment", N.server)] = _server_with_image("good:2")
    c = conds(status(subject(), spec(), ch, [], None, NOW, pods=old))
    assert c["Ready"]["status"] == "True"


def test_pods_are_listed_only_for_workloads_not_rolled_out() -> None:
    ch = children()
    for ref in list(ch):
        if ref.kind in {"Deployment", "StatefulSet"}:
            live = ch[ref]
            live["spec"]["selector"] = {"matchLabels": {"app": ref.name}}
    assert pods_to_inspect(spec(), N, ch) == {}  # settled: no Pod is read
    ch[ChildRef("apps/v1", "StatefulSet", N.postgres)]["status"]["readyReplicas"] = 0
    assert pods_to_inspect(spec(), N, ch) == {N.postgres: f"app={N.postgres}"}
    ch[ChildRef("apps/v1", "Deployment", N.server)]["status"]["observedGeneration"] = 1
    assert set(pods_to_inspect(spec(), N, ch)) == {N.postgres, N.server}
    ext = {k: v for k, v in ch.items() if k.name not in {N.postgres, N.redis}}
    assert set(pods_to_inspect(spec(**EXTERNAL), N, ext)) == {N.server}
    assert pods_to_inspect(spec(), N, {}) == {}  # nothing created yet: nothing to list


def test_a_stuck_bundled_database_stalls_database_ready() -> None:
    ch = children()
    sts = deploy(want=1, updated=1, ready=0)
    sts["spec"]["template"] = {"spec": {"containers": [{"name": "runtime", "image": "pg:x"}]}}
    ch[ChildRef("apps/v1", "StatefulSet", N.postgres)] = sts
    pods = {N.postgres: [_stuck_pod("pg:x", "ErrImagePull")]}
    c = conds(status(subject(), spec(), ch, [], None, NOW, pods=pods))
    assert c["DatabaseReady"]["reason"] == "ErrImagePull"
    assert c["Stalled"]["reason"] == "ErrImagePull"
    assert c["ServerReady"]["status"] == "True"
