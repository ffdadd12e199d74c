"""Deciding when a child must be written: missing, changed render, or edited live object."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from berth_operator.render.drift import (
    adoption_conflict,
    contains,
    is_owned_by,
    needs_apply,
    parse_quantity,
)

from tests.unit.operator.factories import find, rendered, spec


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("0.5", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        ("1024Mi", Decimal(2**30)),
        ("2k", Decimal(2000)),
        ("1e3", Decimal(1000)),
        (3, Decimal(3)),
    ],
)
def test_parse_quantity(text: str | int, value: Decimal) -> None:
    assert parse_quantity(text) == value


def test_parse_quantity_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_quantity("lots")


def _live(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns: our fields plus defaults and bookkeeping."""
    live = copy.deepcopy(obj)
    live["metadata"].update({"uid": "u", "resourceVersion": "7", "generation": 1})
    live["status"] = {"replicas": 1}
    if live["kind"] == "Deployment":
        live["spec"]["strategy"] = {"type": "RollingUpdate"}
        c = live["spec"]["template"]["spec"]["containers"][0]
        c["terminationMessagePath"] = "/dev/termination-log"
        c["resources"] = {"requests": {"cpu": "500m", "memory": "1Gi"}}
        live["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    return live


def _server(**fields: Any) -> dict[str, Any]:
    return find(rendered(spec(**fields)), "Deployment", "demo-server")


def test_unchanged_child_needs_no_write_despite_server_defaults_and_canonical_quantities() -> None:
    desired = _server(server={"resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}}})
    assert not needs_apply(desired, _live(desired))


def test_missing_child_needs_apply() -> None:
    assert needs_apply(_server(), None)


def test_changed_render_needs_apply_even_when_only_fields_were_removed() -> None:
    with_selector = _server(pod={"nodeSelector": {"pool": "a"}})
    without = _server()
    assert needs_apply(without, _live(with_selector))


def test_edited_live_child_needs_apply() -> None:
    desired = _server()
    live = _live(desired)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    assert needs_apply(desired, live)
    live = _live(desired)
    live["spec"]["template"]["spec"]["containers"][0]["env"] = []
    assert needs_apply(desired, live)


def test_contains_matches_named_lists_by_name_and_others_by_position() -> None:
    assert contains([{"name": "a", "v": 1}, {"name": "b"}], [{"name": "b"}, {"name": "a", "v": 1}])
    assert not contains([1, 2], [2, 1])
    assert contains({"x": 1, "extra": 2}, {"x": 1})
    assert contains(None, {})
    assert not contains({"x": 1}, {"x": 2})


def test_ownership() -> None:
    assert is_owned_by({"metadata": {"ownerReferences": [{"uid": "a"}]}}, "a")
    assert not is_owned_by({"metadata": {}}, "a")


def test_adoption_only_of_our_own_objects() -> None:
    desired = find(rendered(), "ConfigMap", "demo-config")
    assert adoption_conflict(desired, None, "uid-1") is None
    owned = {"metadata": {"name": "demo-config", "ownerReferences": [{"uid": "uid-1"}]}}
    assert adoption_conflict(desired, owned, "uid-1") is None
    kept = {"metadata": {"name": "demo-config", "labels": {"berth.dev/agentdeployment": "demo"}}}
    assert adoption_conflict(desired, kept, "uid-1") is None
    foreign = {"metadata": {"name": "demo-config", "labels": {"app": "other"}}}
    assert "not managed by Berth" in str(adoption_conflict(desired, foreign, "uid-1"))
    previous = {
        "metadata": {
            "name": "demo-config",
            "labels": {"berth.dev/agentdeployment": "demo"},
            "ownerReferences": [
                {"kind": "AgentDeployment", "name": "demo", "uid": "old", "controller": True}
            ],
        }
    }
    assert "controlled by AgentDeployment demo (uid old)" in str(
        adoption_conflict(desired, previous, "uid-1")
    )
