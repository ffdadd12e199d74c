"""AgentCron object -> cron row, and cron row + ticks -> AgentCron status (pure).

The cron row's id is derived from the AgentCron's uid, so every replica writes the same row
and a re-created AgentCron gets a new one. ``source`` (``<namespace>/<deployment>/<name>``)
marks rows an AgentCron owns: those whose AgentCron is gone are deleted.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from berth_runtime.crons.schedule import ScheduleError, check_schedule, zone

GROUP = "berth.dev"
VERSION = "v1alpha1"
KIND = "AgentCron"
PLURAL = "agentcrons"
_ID_NAMESPACE = uuid.UUID("6f1d3c3e-2b7a-5c39-9a51-8c0f6d0b7a11")


@dataclass(frozen=True)
class Problem:
    """Why an AgentCron cannot be scheduled (it ends Stalled with this reason)."""

    reason: str
    message: str


def cron_id_of(uid: str) -> uuid.UUID:
    return uuid.uuid5(_ID_NAMESPACE, f"agentcron/{uid}")


def source_prefix(namespace: str, deployment: str) -> str:
    """A LIKE pattern for every row this deployment's AgentCrons own (names have no % or _)."""
    return f"{namespace}/{deployment}/%"


def source_of(namespace: str, deployment: str, name: str) -> str:
    return f"{namespace}/{deployment}/{name}"


def deployment_of(obj: Mapping[str, Any]) -> str | None:
    ref = (obj.get("spec") or {}).get("deploymentRef") or {}
    name = ref.get("name")
    return str(name) if name else None


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def rfc3339(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check(spec: Mapping[str, Any]) -> Problem | None:
    """What admission could not check: a real time zone, a schedule croniter accepts."""
    tz = spec.get("timeZone") or "UTC"
    try:
        zone(tz)
    except ScheduleError:
        return Problem("InvalidTimeZone", f"timeZone {tz!r} is not a time zone of the tz database")
    schedule = str(spec.get("schedule") or "")
    fields = schedule.split()
    try:
        if not (len(fields) == 5 or (len(fields) == 1 and schedule.startswith("@"))):
            raise ScheduleError(f"invalid cron schedule {schedule!r}")
        check_schedule(schedule, tz)
    except ScheduleError:
        return Problem(
            "InvalidSchedule",
            f"schedule {schedule!r} is not a valid 5-field cron expression "
            "(minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of week 0-7)",
        )
    try:
        parse_time(spec.get("endTime"))
    except ValueError:
        return Problem("InvalidEndTime", f"endTime {spec.get('endTime')!r} is not a timestamp")
    return None


def spec_hash(spec: Mapping[str, Any], assistant_id: str) -> str:
    text = json.dumps({"spec": spec, "assistant": assistant_id}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cron_row(obj: Mapping[str, Any], deployment: str, assistant_id: uuid.UUID) -> dict[str, Any]:
    """The cron row an AgentCron stands for (without next_run_date)."""
    meta = obj["metadata"]
    spec = obj["spec"]
    thread = spec.get("threadId")
    # No input would mean "resume from the checkpoint"; a scheduled run starts afresh.
    payload: dict[str, Any] = {"assistant_id": str(assistant_id), "input": spec.get("input") or {}}
    for key in ("config", "context", "webhook"):
        if spec.get(key) is not None:
            payload[key] = spec[key]
    if thread:
        payload["if_not_exists"] = "create"
    return {
        "cron_id": cron_id_of(meta["uid"]),
        "assistant_id": assistant_id,
        "thread_id": uuid.UUID(thread) if thread else None,
        "schedule": spec["schedule"],
        "timezone": spec.get("timeZone") or "UTC",
        "end_time": parse_time(spec.get("endTime")),
        "payload": payload,
        "metadata": {
            "agentcron": meta["name"],
            "agentcron_namespace": meta["namespace"],
            "agentcron_uid": meta["uid"],
        },
        "enabled": not spec.get("suspend", False),
        "on_run_completed": "keep" if spec.get("onRunCompleted") == "Keep" else "delete",
        "concurrency_policy": str(spec.get("concurrencyPolicy") or "Forbid").lower(),
        "starting_deadline_seconds": spec.get("startingDeadlineSeconds"),
        "source": source_of(meta["namespace"], deployment, meta["name"]),
        "source_hash": spec_hash(spec, str(assistant_id)),
        "successful_history_limit": spec.get("successfulRunsHistoryLimit", 3),
        "failed_history_limit": spec.get("failedRunsHistoryLimit", 1),
    }


def _condition(
    live: Sequence[Mapping[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> dict[str, Any]:
    """A metav1.Condition; lastTransitionTime moves only when the status does."""
    before = next((c for c in live if c.get("type") == type_), None)
    since = before.get("lastTransitionTime") if before and before.get("status") == status else None
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since or now,
    }


_RUN_REASONS = {
    "error": "RunFailed",
    "timeout": "RunTimedOut",
    "interrupted": "RunInterrupted",
    "gone": "RunDeleted",
}


def status_of(
    obj: Mapping[str, Any],
    cron: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    problem: Problem | None,
    now: datetime,
) -> dict[str, Any]:
    """The whole status the runtime writes for one AgentCron."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    generation = meta.get("generation")
    live = (obj.get("status") or {}).get("conditions") or []
    stamp = rfc3339(now) or ""

    def cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return _condition(live, type_, status, reason, message, generation, stamp)

    summary = summary or {}
    conditions: list[dict[str, Any]]
    if problem is not None:
        conditions = [
            cond("Ready", "False", problem.reason, problem.message),
            cond("Stalled", "True", problem.reason, problem.message),
            cond("Reconciling", "False", problem.reason, "not scheduled"),
        ]
    else:
        nxt = cron.get("next_run_date") if cron else None
        if spec.get("suspend"):
            ready = ("Suspended", "suspended: no new ticks; active runs go on")
        elif nxt is None:
            ready = ("Ended", "no more ticks (endTime reached)")
        else:
            ready = ("Scheduled", f"next tick at {rfc3339(nxt)}")
        conditions = [
            cond("Ready", "True", *ready),
            cond("Stalled", "False", "Scheduled", ""),
            cond("Reconciling", "False", "Scheduled", ""),
        ]
    last = summary.get("last_status")
    if last is None:
        conditions.append(cond("LastRunSucceeded", "Unknown", "NoRunYet", "no run has ended yet"))
    elif last == "success":
        conditions.append(
            cond("LastRunSucceeded", "True", "RunSucceeded", "the last run succeeded")
        )
    else:
        reason = _RUN_REASONS.get(str(last), "RunFailed")
        conditions.append(cond("LastRunSucceeded", "False", reason, f"the last run ended {last}"))
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": conditions,
        "cronId": str(cron["cron_id"]) if cron else None,
        "lastScheduleTime": rfc3339(summary.get("last_schedule")),
        "lastSuccessfulTime": rfc3339(summary.get("last_success")),
        "nextScheduleTime": rfc3339(cron.get("next_run_date")) if cron else None,
        "lastRunId": str(summary["last_run_id"]) if summary.get("last_run_id") else None,
        "active": list(summary.get("active") or []) or None,
    }
    return status


def status_changed(new: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """True when a merge patch with `new` would change the live status."""
    live = live or {}
    return any(live.get(k) != v for k, v in new.items())
