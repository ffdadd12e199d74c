"""Conditions and status computed from observed children."""

from __future__ import annotations

from typing import Any

from berth_operator.render.desired import Problem
from berth_operator.render.names import ChildNames, ChildRef
from berth_operator.render.status import status, status_patch

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
