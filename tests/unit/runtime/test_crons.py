"""Cron schedules, time zones and the run request a fire makes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from berth_runtime.crons.fire import payload_of, run_request
from berth_runtime.crons.schedule import ScheduleError, check_schedule, next_fire
from berth_runtime.crons.scheduler import following
from berth_runtime.models import RunCreateStateful, RunCreateStateless


def test_next_fire_respects_the_time_zone() -> None:
    after = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    nxt = next_fire("0 9 * * *", "America/New_York", after)
    assert nxt.astimezone(UTC) == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert next_fire("* * * * * */10", None, after) == datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "tz"), [("every day", None), ("* * *", None), ("0 9 * * *", "Nowhere/City")]
)
def test_bad_schedules(schedule: str, tz: str | None) -> None:
    with pytest.raises(ScheduleError):
        check_schedule(schedule, tz)


def test_end_time_stops_the_cron() -> None:
    cron = {"schedule": "0 9 * * *", "timezone": "UTC", "end_time": None}
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert following(cron, after) == datetime(2026, 1, 1, 9, tzinfo=UTC)
    cron["end_time"] = datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert following(cron, after) is None


def test_fire_builds_the_right_run_request() -> None:
    cid = uuid.uuid4()
    payload = payload_of({"assistant_id": "a", "input": {"x": 1}, "multitask_strategy": "reject"})
    base = {"cron_id": cid, "assistant_id": uuid.uuid4(), "payload": payload, "metadata": {"m": 1}}
    stateful = run_request({**base, "thread_id": uuid.uuid4()})
    assert isinstance(stateful, RunCreateStateful) and stateful.multitask_strategy == "reject"
    assert stateful.metadata == {"m": 1, "cron_id": str(cid)} and stateful.input == {"x": 1}
    stateless = run_request({**base, "thread_id": None, "on_run_completed": "keep"})
    assert isinstance(stateless, RunCreateStateless) and stateless.on_completion == "keep"
