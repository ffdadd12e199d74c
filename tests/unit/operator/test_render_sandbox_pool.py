"""plan_pool, Expectations and pick_warm_pod: the pool daemon's decisions."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from berth_operator.render.sandbox import pool as sp

from tests.unit.operator.sandbox_factories import HASH, NOW, OLD, pod, pool_spec


def plan(pods: list[dict[str, Any]], **fields: Any) -> sp.PoolPlan:
    exp = fields.pop("expectations", None)
    batch = fields.pop("batch_size", sp.DEFAULT_BATCH)
    return sp.plan_pool(pool_spec(**fields), pods, HASH, NOW, exp, batch)


def test_empty_pool_creates_its_warm_size() -> None:
    p = plan([], replicas=3, maxSize=10)
    assert (p.create, p.delete, p.warm, p.ready, p.claimed) == (3, (), 0, 0, 0)
    assert not p.settled


def test_full_pool_is_settled() -> None:
    p = plan([pod("a"), pod("b"), pod("c", state="claimed", claim="c1")], replicas=2)
    assert (p.create, p.delete, p.ready, p.claimed) == (0, (), 2, 1)
    assert p.settled and p.requeue_after is None


def test_shortfall_is_created_in_batches() -> None:
    p = plan([], replicas=120, maxSize=200, batch_size=50)
    assert p.create == 50
    seen = [pod(f"p{i}", ready=False, age=1) for i in range(50)]
    assert plan(seen, replicas=120, maxSize=200, batch_size=50).create == 50
    assert plan(seen * 2 + [pod("x")], replicas=120, maxSize=200).create == 19


def test_starting_pods_count_and_requeue_at_their_deadline() -> None:
    p = plan([pod("a", ready=False, age=100), pod("b")], replicas=2)
    assert p.create == 0 and p.delete == ()
    assert p.warm == 2 and p.ready == 1
    assert p.requeue_after == 200.0  # grace 300 s minus 100 s of age


def test_never_over_max_size_counting_claimed_pods() -> None:
    claimed = [pod(f"c{i}", state="claimed", claim=f"k{i}") for i in range(4)]
    p = plan(claimed, replicas=3, maxSize=5)
    assert p.create == 1 and p.blocked == 2
    p = plan([*claimed, pod("w")], replicas=3, maxSize=5)
    assert p.create == 0 and p.blocked == 2


def test_lowered_max_size_deletes_warm_pods_but_never_claimed_ones() -> None:
    claimed = [pod(f"c{i}", state="claimed", claim=f"k{i}") for i in range(3)]
    warm = [pod("w-old", age=900), pod("w-new", age=10)]
    p = plan([*claimed, *warm], replicas=2, maxSize=4)
    assert p.delete == ("w-new",) and p.reasons["w-new"] == sp.DELETE_OVER_MAX
    p = plan([*claimed, *warm], replicas=0, maxSize=2)
    assert set(p.delete) == {"w-old", "w-new"}
    assert all(not n.startswith("c") for n in p.delete)


def test_shrinking_deletes_not_ready_first_then_stale_then_newest() -> None:
    pods = [
        pod("ready-old", age=1000),
        pod("ready-new", age=100),
        pod("stale", age=2000, thash=OLD),
        pod("starting", ready=False, age=5),
    ]
    assert plan(pods, replicas=3).delete == ("starting",)
    assert set(plan(pods, replicas=2).delete) == {"starting", "stale"}
    assert set(plan(pods, replicas=1).delete) == {"starting", "stale", "ready-new"}
    p = plan(pods, replicas=0)
    assert set(p.delete) == {"starting", "stale", "ready-new", "ready-old"}
    assert set(p.reasons.values()) == {sp.DELETE_SCALE_DOWN}


def test_stuck_and_failed_warm_pods_are_replaced() -> None:
    pods = [
        pod("stuck", ready=False, age=301),
        pod("young", ready=False, age=299),
        pod("dead", phase="Failed", ready=False, age=10),
        pod("ok"),
    ]
    p = plan(pods, replicas=4)
    assert p.reasons == {"stuck": sp.DELETE_NOT_READY, "dead": sp.DELETE_FAILED}
    assert p.create == 2 and p.warm == 2
    p = plan(pods, replicas=4, readinessGracePeriodSeconds=600)
    assert p.reasons == {"dead": sp.DELETE_FAILED} and p.create == 1


def test_claimed_pods_are_not_the_daemons_business() -> None:
    pods = [pod("c", state="claimed", claim="k", ready=False, age=10000, phase="Failed")]
    p = plan(pods, replicas=1)
    assert p.delete == () and p.claimed == 1 and p.create == 1


def test_on_replenish_keeps_stale_pods_recreate_replaces_them() -> None:
    pods = [pod("s1", thash=OLD), pod("s2", thash=OLD), pod("n1")]
    keep = plan(pods, replicas=3)
    assert keep.delete == () and keep.create == 0 and keep.stale == 2 and keep.ready == 3
    recreate = plan(pods, replicas=3, updateStrategy={"type": "Recreate"})
    assert set(recreate.delete) == {"s1", "s2"}
    assert set(recreate.reasons.values()) == {sp.DELETE_STALE}
    assert recreate.create == 2 and recreate.stale == 0


def test_recreate_replacement_respects_max_size_and_batches() -> None:
    stale = [pod(f"s{i}", thash=OLD) for i in range(4)]
    claimed = [pod(f"c{i}", state="claimed", claim=f"k{i}", thash=OLD) for i in range(2)]
    p = plan(
        [*stale, *claimed],
        replicas=4,
        maxSize=5,
        updateStrategy={"type": "Recreate"},
        batch_size=2,
    )
    assert len(p.delete) == 4 and p.create == 2 and p.blocked == 1


def test_terminating_pods_are_ignored() -> None:
    p = plan([pod("gone", terminating=True), pod("a")], replicas=2)
    assert p.create == 1 and p.delete == () and p.warm == 1


def test_expectations_stop_double_creates_and_double_deletes() -> None:
    exp = sp.Expectations().created(["py-new1", "py-new2"], NOW)
    p = plan([pod("a")], replicas=3, expectations=exp)
    assert p.create == 0 and p.pending == 2 and not p.settled
    exp = sp.Expectations().deleted(["a"], NOW)
    p = plan([pod("a"), pod("b")], replicas=2, expectations=exp)
    assert p.delete == () and p.create == 1  # "a" is on its way out: replace it once
    # Pending creates count towards maxSize too.
    exp = sp.Expectations().created(["x1", "x2", "x3"], NOW)
    assert plan([], replicas=4, maxSize=4, expectations=exp).create == 1
    claimed = pod("c", state="claimed", claim="k")
    assert plan([claimed], replicas=4, maxSize=4, expectations=exp).create == 0
    # And a scale-down while creates are in flight deletes only what exists.
    exp = sp.Expectations().created(["x1"], NOW)
    p = plan([pod("a"), pod("b")], replicas=1, expectations=exp)
    assert set(p.delete) == {"a", "b"}


def test_expectations_settle_when_observed_or_too_old() -> None:
    later = NOW + dt.timedelta(seconds=5)
    exp = sp.Expectations().created(["n1", "n2"], NOW).deleted(["d1", "d2", "d3"], NOW)
    settled = exp.settle([pod("n1"), pod("d1"), pod("d2", terminating=True)], later)
    assert dict(settled.creating) == {"n2": NOW}
    assert dict(settled.deleting) == {"d1": NOW}
    expired = exp.settle([pod("d1")], NOW + dt.timedelta(seconds=sp.EXPECTATION_TIMEOUT + 1))
    assert expired.empty


def test_pick_prefers_ready_current_pods_and_spreads_claims() -> None:
    pods = [
        pod("stale", thash=OLD),
        pod("starting", ready=False),
        pod("gone", terminating=True),
        pod("taken", state="claimed", claim="k"),
        *[pod(f"w{i}") for i in range(5)],
    ]
    picks = Counter(
        str(sp.pick_warm_pod(pods, HASH, key=f"claim-{i}")["metadata"]["name"])  # type: ignore[index]
        for i in range(200)
    )
    assert set(picks) == {f"w{i}" for i in range(5)}
    assert min(picks.values()) > 10  # spread, not all on one Pod
    same = sp.pick_warm_pod(pods, HASH, key="c1")
    assert same is sp.pick_warm_pod(pods, HASH, key="c1")


def test_pick_excludes_and_falls_back_to_stale_then_none() -> None:
    pods = [pod("stale", thash=OLD), pod("w0")]
    assert sp.pick_warm_pod(pods, HASH, key="k")["metadata"]["name"] == "w0"  # type: ignore[index]
    fallback = sp.pick_warm_pod(pods, HASH, key="k", exclude={"w0"})
    assert fallback is not None and fallback["metadata"]["name"] == "stale"
    assert sp.pick_warm_pod(pods, HASH, key="k", exclude={"w0", "stale"}) is None
    assert sp.pick_warm_pod([pod("x", ready=False)], HASH) is None


def test_time_helpers() -> None:
    assert sp.format_time(NOW) == "2026-12-03T08:00:00Z"
    assert sp.parse_time("2026-12-03T08:00:00Z") == NOW
    assert sp.parse_time(None) is None
    assert sp.is_pod_ready(pod("a")) and not sp.is_pod_ready(pod("a", terminating=True))
