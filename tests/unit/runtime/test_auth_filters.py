"""Authorization filters: matching metadata and the jsonb containment used by searches."""

from __future__ import annotations

import pytest
from berth_runtime.auth.authorize import User, user_from
from berth_runtime.auth.filters import FilterError, containment, matches


def test_matches() -> None:
    meta = {"owner": "alice", "tags": ["a", "b"], "n": 1}
    assert matches(meta, None) and matches(meta, {})
    assert matches(meta, {"owner": "alice"}) and not matches(meta, {"owner": "bob"})
    assert matches(meta, {"owner": {"$eq": "alice"}})
    assert matches(meta, {"tags": {"$contains": "a"}})
    assert matches(meta, {"tags": {"$contains": ["a", "b"]}})
    assert not matches(meta, {"tags": {"$contains": "c"}})
    assert not matches(meta, {"n": {"$contains": 1}})  # not a list
    assert not matches(None, {"owner": "alice"})
    with pytest.raises(FilterError):
        matches(meta, {"n": {"$gt": 0}})


def test_containment() -> None:
    assert containment({"owner": "a", "t": {"$contains": "x"}, "e": {"$eq": 2}}) == {
        "owner": "a",
        "t": ["x"],
        "e": 2,
    }
    assert containment(None) == {}


def test_users() -> None:
    u = user_from({"identity": "ignored", "permissions": ["read"], "org": "o"}, "alice")
    assert u.identity == "alice" and list(u.permissions) == ["read"] and u["org"] == "o"
    assert "org" in u and "identity" in u and u["identity"] == "alice"
    assert user_from("alice", "alice") == User("alice", [], "alice")
