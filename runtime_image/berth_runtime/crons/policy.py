"""What a due cron does now: the Kubernetes CronJob rules, as pure functions.

- After downtime only the latest missed tick runs, and only if it is no later than
  ``starting_deadline_seconds`` (unset: no deadline).
- ``forbid`` skips a tick while a run of the cron is active; ``replace`` cancels the
  active runs first; ``allow`` just starts.
- ``(cron_id, scheduled time)`` is the idempotency key of a tick.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from croniter import croniter

from berth_runtime.crons.schedule import check_schedule, zone

Action = Literal["run", "missed"]
Concurrency = Literal["start", "skip", "replace"]


@dataclass(frozen=True)
class TickPlan:
    """The tick to act on, what to do with it and when the cron is due next."""

    scheduled: datetime
    action: Action
    late_seconds: float
    skipped_ticks: int  # older missed ticks dropped without a run (CronJob semantics)
    next_run: datetime | None


def latest_tick(schedule: str, timezone: str | None, now: datetime) -> datetime:
    """The latest scheduled time at or before `now` (in the cron's time zone)."""
    check_schedule(schedule, timezone)
    local = now.astimezone(zone(timezone))
    prev: datetime = croniter(schedule, local).get_prev(datetime)
    nxt: datetime = croniter(schedule, prev).get_next(datetime)
    return nxt if nxt <= now else prev


def next_tick(
    schedule: str, timezone: str | None, after: datetime, end_time: datetime | None = None
) -> datetime | None:
    """The first scheduled time strictly after `after`; None once past `end_time`."""
    check_schedule(schedule, timezone)
    nxt: datetime = croniter(schedule, after.astimezone(zone(timezone))).get_next(datetime)
    return None if end_time is not None and nxt > end_time else nxt


def count_ticks(
    schedule: str, timezone: str | None, first: datetime, last: datetime, cap: int = 1000
) -> int:
    """Scheduled times in [first, last] (capped: only used to report dropped ticks)."""
    it = croniter(schedule, (first - timedelta(seconds=1)).astimezone(zone(timezone)))
    n = 0
    while n < cap and it.get_next(datetime) <= last:
        n += 1
    return n


def plan_tick(
    schedule: str,
    timezone: str | None,
    due: datetime,
    now: datetime,
    deadline_seconds: int | None,
    end_time: datetime | None = None,
) -> TickPlan:
    """Decide about a cron whose ``next_run_date`` (`due`) is at or before `now`."""
    scheduled = max(due, latest_tick(schedule, timezone, now))
    if end_time is not None and scheduled > end_time:
        scheduled = due  # the last tick before the end
    late = (now - scheduled).total_seconds()
    skipped = max(0, count_ticks(schedule, timezone, due, scheduled) - 1)
    missed = deadline_seconds is not None and late > deadline_seconds
    return TickPlan(
        scheduled=scheduled,
        action="missed" if missed else "run",
        late_seconds=late,
        skipped_ticks=skipped,
        next_run=next_tick(schedule, timezone, now, end_time),
    )


def concurrency(policy: str, active_runs: int) -> Concurrency:
    """What a tick does about the cron's runs still pending or running."""
    if active_runs == 0 or policy == "allow":
        return "start"
    if policy == "replace":
        return "replace"
    return "skip"


def tick_key(cron_id: str, scheduled: datetime) -> str:
    """The idempotency key of a tick, as carried in the run's metadata."""
    return f"{cron_id}@{scheduled.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


TICK_RUN_NAMESPACE = uuid.UUID("6f1b1e44-2f7b-4f7e-9a53-6c1f0d2b7a10")


def tick_run_id(cron_id: str, scheduled: datetime) -> uuid.UUID:
    """The run id of a tick, the same for every scheduler that fires it: a retry after a
    crash, or a slow scheduler racing the one that recovered its tick, cannot start a
    second run (the run's primary key refuses it)."""
    return uuid.uuid5(TICK_RUN_NAMESPACE, tick_key(cron_id, scheduled))


def recovered_tick_missed(scheduled: datetime, now: datetime, deadline_seconds: int | None) -> bool:
    """A tick recovered from a dead scheduler is missed if it is now past its deadline."""
    return deadline_seconds is not None and (now - scheduled).total_seconds() > deadline_seconds
