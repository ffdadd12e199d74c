"""AgentCron -> cron row and cron row + ticks -> AgentCron status (the pure half of the sync)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from berth_runtime.crons.agentcron import (
    Problem,
    check,
    cron_id_of,
    cron_row,
    source_prefix,
    status_changed,
    status_of,
)
from berth_runtime.crons.fire import run_request
from berth_runtime.crons.sync import interval_from_env
from berth_runtime.models import RunCreateStateful, RunCreateStateless

NOW = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
AID = uuid.uuid4()
THREAD = "2a7d5a1e-8f3b-4c1e-9d55-0b6f2f1d3c4e"


def agentcron(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "AgentCron",
        "metadata": {"name": "nightly", "namespace": "ns", "uid": "u-1", "generation": 2},
        "spec": {
            "deploymentRef": {"name": "agent"},
            "assistantId": "agent",
            "schedule": "* * * * *",
            "timeZone": "UTC",
            "concurrencyPolicy": "Forbid",
            "suspend": False,
            "successfulRunsHistoryLimit": 3,
            "failedRunsHistoryLimit": 1,
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"schedule": "61 * * * *"}, "InvalidSchedule"),
        ({"schedule": "* * * * * *"}, "InvalidSchedule"),  # seconds: not a CronJob schedule
        ({"schedule": "0 9 31 2 mon-xyz"}, "InvalidSchedule"),
        ({"timeZone": "Mars/Olympus"}, "InvalidTimeZone"),
        ({"endTime": "yesterday"}, "InvalidEndTime"),
    ],
)
def test_check_finds_what_admission_cannot(spec: dict[str, Any], reason: str) -> None:
    problem = check(agentcron(**spec)["spec"])
    assert problem is not None and problem.reason == reason


@pytest.mark.parametrize(
    "spec", [{}, {"schedule": "@hourly"}, {"timeZone": "Europe/Paris", "schedule": "0 9 * * 1-5"}]
)
def test_check_accepts_valid_specs(spec: dict[str, Any]) -> None:
    assert check(agentcron(**spec)["spec"]) is None


def test_stateless_row() -> None:
    row = cron_row(
        agentcron(input={"q": 1}, onRunCompleted="Keep", webhook="https://x.example/h"),
        "agent",
        AID,
    )
    assert row["cron_id"] == cron_id_of("u-1") and row["thread_id"] is None
    assert row["source"] == "ns/agent/nightly" and row["source"].startswith("ns/agent/")
    assert source_prefix("ns", "agent") == "ns/agent/%"
    assert row["concurrency_policy"] == "forbid" and row["on_run_completed"] == "keep"
    assert row["enabled"] is True and row["successful_history_limit"] == 3
    req = run_request(row)
    assert isinstance(req, RunCreateStateless)
    assert req.input == {"q": 1} and req.webhook == "https://x.example/h"
    assert req.on_completion == "keep" and req.metadata["cron_id"] == str(row["cron_id"])


def test_stateful_row_creates_its_thread_and_suspend_disables() -> None:
    row = cron_row(agentcron(threadId=THREAD, suspend=True), "agent", AID)
    assert row["thread_id"] == uuid.UUID(THREAD) and row["enabled"] is False
    req = run_request(row)
    assert isinstance(req, RunCreateStateful) and req.if_not_exists == "create"


def test_hash_changes_with_the_spec_only() -> None:
    a = cron_row(agentcron(), "agent", AID)["source_hash"]
    assert cron_row(agentcron(), "agent", AID)["source_hash"] == a
    assert cron_row(agentcron(suspend=True), "agent", AID)["source_hash"] != a
    assert cron_row(agentcron(), "agent", uuid.uuid4())["source_hash"] != a


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_status_of_a_scheduled_cron_with_runs() -> None:
    cron = {"cron_id": cron_id_of("u-1"), "next_run_date": datetime(2026, 1, 1, 10, 1, tzinfo=UTC)}
    summary = {
        "last_schedule": datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
        "last_run_id": uuid.UUID(int=7),
        "last_success": datetime(2026, 1, 1, 9, 59, tzinfo=UTC),
        "last_status": "success",
        "active": [str(uuid.UUID(int=7))],
    }
    st = status_of(agentcron(), cron, summary, None, NOW)
    assert st["observedGeneration"] == 2 and st["cronId"] == str(cron_id_of("u-1"))
    assert st["lastScheduleTime"] == "2026-01-01T10:00:00Z"
    assert st["lastSuccessfulTime"] == "2026-01-01T09:59:00Z"
    assert st["nextScheduleTime"] == "2026-01-01T10:01:00Z"
    assert st["lastRunId"] == str(uuid.UUID(int=7)) and st["active"] == [str(uuid.UUID(int=7))]
    assert conds(st) == {
        "Ready": ("True", "Scheduled"),
        "Stalled": ("False", "Scheduled"),
        "Reconciling": ("False", "Scheduled"),
        "LastRunSucceeded": ("True", "RunSucceeded"),
    }
    assert all(c["observedGeneration"] == 2 for c in st["conditions"])


def test_status_of_suspended_failed_and_stalled() -> None:
    cron = {"cron_id": cron_id_of("u-1"), "next_run_date": None}
    st = status_of(agentcron(suspend=True), cron, {"last_status": "error"}, None, NOW)
    assert conds(st)["Ready"] == ("True", "Suspended")
    assert conds(st)["LastRunSucceeded"] == ("False", "RunFailed")
    assert st["nextScheduleTime"] is None and st["active"] is None
    bad = Problem("InvalidTimeZone", "timeZone 'Mars/Olympus' is not a time zone")
    st = status_of(agentcron(timeZone="Mars/Olympus"), None, None, bad, NOW)
    assert conds(st)["Stalled"] == ("True", "InvalidTimeZone")
    assert conds(st)["Ready"] == ("False", "InvalidTimeZone")
    assert conds(st)["LastRunSucceeded"] == ("Unknown", "NoRunYet")


def test_an_unchanged_status_is_not_rewritten() -> None:
    cron = {"cron_id": cron_id_of("u-1"), "next_run_date": datetime(2026, 1, 1, 10, 1, tzinfo=UTC)}
    first = status_of(agentcron(), cron, None, None, NOW)
    obj = {**agentcron(), "status": first}
    later = status_of(obj, cron, None, None, datetime(2026, 1, 1, 11, 0, tzinfo=UTC))
    assert later == first and not status_changed(later, first)  # transition times kept
    moved = status_of(obj, {**cron, "next_run_date": None}, None, None, NOW)
    assert status_changed(moved, first)


def test_sync_interval_env() -> None:
    assert interval_from_env({}) == 10.0
    assert interval_from_env({"BERTH_AGENTCRON_SYNC_SECONDS": "0.5"}) == 0.5
    assert interval_from_env({"BERTH_AGENTCRON_SYNC_SECONDS": "x"}) == 10.0
