"""Named SQL files and migration discovery."""

from __future__ import annotations

import pytest
from berth_runtime.db.sql import (
    QueryNotFound,
    migration_files,
    parse_migration_version,
    parse_named_queries,
    query,
)


def test_parse_named_queries() -> None:
    text = (
        "-- preamble\n-- name: a\n-- doc\nSELECT 1;\n\n"
        "-- name: b\nUPDATE t SET x = 1\nRETURNING x;\n"
    )
    assert parse_named_queries(text) == {
        "a": "-- doc\nSELECT 1",
        "b": "UPDATE t SET x = 1\nRETURNING x",
    }


def test_duplicate_or_empty_queries_are_errors() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_named_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")
    with pytest.raises(ValueError, match="empty"):
        parse_named_queries("-- name: a\n\n-- name: b\nSELECT 1")


def test_queue_state_changes_are_guarded_updates() -> None:
    for name in ("claim_runs", "heartbeat", "finish_run", "requeue_run", "reap_lost"):
        sql = query(name)
        assert "UPDATE run" in sql and "RETURNING" in sql, name
    for fenced in ("heartbeat", "finish_run", "requeue_run", "delete_running_run"):
        sql = query(fenced)
        assert "owner = %(owner)s" in sql and "attempt = %(attempt)s" in sql, fenced
    assert "SKIP LOCKED" in query("claim_runs")
    with pytest.raises(QueryNotFound):
        query("no_such_query")


def test_migrations_are_ordered_and_numbered() -> None:
    files = migration_files()
    assert [v for v, _, _ in files] == sorted(v for v, _, _ in files)
    assert files[0][0] == 1 and "run_one_running_per_thread" in files[0][2]
    assert parse_migration_version("0012_add_x.sql") == 12
    assert parse_migration_version("notes.sql") is None
    assert parse_migration_version("0001_x.txt") is None
