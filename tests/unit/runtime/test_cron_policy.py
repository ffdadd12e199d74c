"""CronJob semantics as pure decisions: next tick, latest missed tick, deadline, policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from berth_runtime.crons.clock import ManualClock, OffsetFileClock, SystemClock, clock_from_env
from berth_runtime.crons.policy import (
    concurrency,
    count_ticks,
    latest_tick,
    next_tick,
    plan_tick,
    tick_key,
)
from berth_runtime.crons.schedule import ScheduleError

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_next_tick_is_strictly_after_and_stops_at_end_time() -> None:
    assert next_tick("* * * * *", "UTC", T0) == at(1)
    assert next_tick("*/5 * * * *", "UTC", at(0.5)) == at(5)
    assert next_tick("*/5 * * * *", "UTC", at(0.5), end_time=at(4)) is None
    assert next_tick("0 9 * * *", "Europe/Paris", T0) == datetime(2026, 1, 2, 8, 0, tzinfo=UTC)


def test_latest_tick_includes_a_tick_exactly_now() -> None:
    assert latest_tick("*/5 * * * *", "UTC", at(5)) == at(5)
    assert latest_tick("*/5 * * * *", "UTC", at(7)) == at(5)
    assert latest_tick("0 9 * * *", "America/New_York", at(0)) == datetime(
        2026, 1, 1, 9 + 5, 0, tzinfo=UTC
    ) - timedelta(days=1)


def test_on_time_tick_runs_and_schedules_the_next() -> None:
    plan = plan_tick("* * * * *", "UTC", at(1), at(1) + timedelta(seconds=2), None)
    assert plan.action == "run" and plan.scheduled == at(1)
    assert plan.skipped_ticks == 0 and plan.next_run == at(2)
    assert plan.late_seconds == pytest.approx(2)


def test_after_downtime_only_the_latest_missed_tick_runs() -> None:
    # due at 10:01, the runtime was down until 10:09:30: 10:01..10:09 were due, only 10:09 runs
    plan = plan_tick("* * * * *", "UTC", at(1), at(9.5), None)
    assert plan.action == "run" and plan.scheduled == at(9)
    assert plan.skipped_ticks == 8
    assert plan.next_run == at(10)


def test_starting_deadline_misses_a_tick_that_is_too_late() -> None:
    late = plan_tick("* * * * *", "UTC", at(1), at(1.75), 30)
    assert late.action == "missed" and late.scheduled == at(1) and late.late_seconds == 45
    in_time = plan_tick("* * * * *", "UTC", at(1), at(1.25), 30)
    assert in_time.action == "run"
    # after downtime the latest tick decides, not the first one that was due
    assert plan_tick("* * * * *", "UTC", at(1), at(9.25), 30).action == "run"
    assert plan_tick("* * * * *", "UTC", at(1), at(9.75), 30).action == "missed"
    # a deadline of 0 still runs a tick found exactly on time
    assert plan_tick("* * * * *", "UTC", at(1), at(1), 0).action == "run"


def test_end_time_keeps_the_last_tick_before_it() -> None:
    plan = plan_tick("* * * * *", "UTC", at(1), at(6.5), None, end_time=at(3))
    assert plan.scheduled == at(1) and plan.next_run is None


def test_bad_schedule_raises() -> None:
    with pytest.raises(ScheduleError):
        plan_tick("61 * * * *", "UTC", at(1), at(2), None)
    with pytest.raises(ScheduleError):
        next_tick("* * * * *", "Mars/Olympus", T0)


def test_count_ticks_is_inclusive_and_capped() -> None:
    assert count_ticks("* * * * *", "UTC", at(1), at(1)) == 1
    assert count_ticks("* * * * *", "UTC", at(1), at(3)) == 3
    assert count_ticks("* * * * * *", "UTC", at(0), at(60), cap=50) == 50


@pytest.mark.parametrize(
    ("policy", "active", "expected"),
    [
        ("allow", 0, "start"),
        ("allow", 2, "start"),
        ("forbid", 0, "start"),
        ("forbid", 1, "skip"),
        ("replace", 0, "start"),
        ("replace", 1, "replace"),
    ],
)
def test_concurrency_policy(policy: str, active: int, expected: str) -> None:
    assert concurrency(policy, active) == expected


def test_tick_key_is_the_cron_and_the_scheduled_minute_in_utc() -> None:
    paris = at(1).astimezone(next_tick("* * * * *", "Europe/Paris", T0).tzinfo)  # type: ignore[arg-type]
    assert tick_key("c1", paris) == tick_key("c1", at(1)) == "c1@2026-01-01T10:01:00Z"
    assert tick_key("c1", at(1)) != tick_key("c1", at(2)) != tick_key("c2", at(2))


def test_clocks(tmp_path: pytest.TempPathFactory) -> None:
    manual = ManualClock(T0)
    manual.set(at(3))
    assert manual.now() == at(3)
    path = tmp_path / "offset"  # type: ignore[operator]
    clock = clock_from_env({"BERTH_CRON_CLOCK_OFFSET_FILE": str(path)})
    assert isinstance(clock, OffsetFileClock)
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5  # no file yet: offset 0
    path.write_text("3600\n")
    assert 3590 < (clock.now() - datetime.now(UTC)).total_seconds() < 3610
    path.write_text("@2026-01-01T10:01:00Z\n")  # frozen
    assert clock.now() == at(1) and clock.now() == at(1)
    path.write_text("garbage")
    assert clock.offset() == 0.0
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5
    assert isinstance(clock_from_env({}), SystemClock)
