"""Cron expressions and time zones (pure)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be used."""


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def check_schedule(schedule: str, timezone: str | None) -> None:
    """Five fields (minute precision), six (a trailing seconds field) or an @-macro."""
    zone(timezone)
    if schedule.startswith("@") and croniter.is_valid(schedule):
        return
    if len(schedule.split()) not in (5, 6) or not croniter.is_valid(schedule):
        raise ScheduleError(f"invalid cron schedule {schedule!r}")


def next_fire(schedule: str, timezone: str | None, after: datetime) -> datetime:
    """The first fire time strictly after `after`, evaluated in the cron's time zone."""
    check_schedule(schedule, timezone)
    local = after.astimezone(zone(timezone))
    nxt: datetime = croniter(schedule, local).get_next(datetime)
    return nxt
