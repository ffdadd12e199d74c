"""`AgentCron`: scheduled runs of an assistant on an AgentDeployment, declared in Git.

The schedule lives in the runtime's durable cron table; the runtime of the referenced
AgentDeployment watches its AgentCrons, keeps its cron rows in line and writes the status
(see docs/agentcron.md). CEL catches what it can at admission (field count and characters
of the schedule, the shape of a time zone name, stateless-only fields); a schedule or zone
that only a cron parser or the tz database can refuse ends ``Stalled`` with a reason.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from berth_operator.api.agentdeployment import cel
from berth_operator.api.common import (
    AnyJson,
    BerthModel,
    Conditions,
    FreeForm,
    LocalObjectReference,
)

KIND = "AgentCron"
PLURAL = "agentcrons"
SINGULAR = "agentcron"
SHORT_NAMES = ["agc"]

# Five whitespace-separated fields of cron characters, or one of the @-macros CronJob accepts.
_FIELD = r"[0-9A-Za-z*/,?\-]+"
SCHEDULE_PATTERN = (
    rf"^\s*({_FIELD}\s+){{4}}{_FIELD}\s*$"
    r"|^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$"
)
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

# CEL's `matches` takes RE2; the patterns above are plain enough for both RE2 and Python.
_CEL_SCHEDULE = SCHEDULE_PATTERN.replace("\\", "\\\\")
_CEL_ZONE = TIME_ZONE_PATTERN.replace("\\", "\\\\")


_RULES: dict[str, Any] = {
    "x-kubernetes-validations": [
        cel(
            f"self.schedule.matches('{_CEL_SCHEDULE}')",
            "schedule must be a standard cron expression with 5 fields "
            "(minute hour day-of-month month day-of-week) or an @-macro such as @hourly",
        ),
        cel(
            "!self.schedule.contains('TZ')",
            "schedule must not set a time zone (CRON_TZ/TZ); use spec.timeZone",
        ),
        cel(
            f"!has(self.timeZone) || self.timeZone.matches('{_CEL_ZONE}')",
            "timeZone must be an IANA time zone name such as Europe/Paris or UTC",
        ),
        cel(
            "!has(self.threadId) || !has(self.onRunCompleted)",
            "onRunCompleted applies only to stateless crons (without threadId): "
            "a stateful cron keeps its thread",
        ),
    ]
}


class AgentCronSpec(BerthModel):
    """Scheduled runs of an assistant on an AgentDeployment in the same namespace."""

    model_config = ConfigDict(json_schema_extra=_RULES)

    deployment_ref: LocalObjectReference = Field(
        description="The AgentDeployment (same namespace) whose runtime runs this cron."
    )
    assistant_id: str = Field(min_length=1, description="Graph name or assistant id.")
    schedule: str = Field(
        min_length=1,
        max_length=256,
        description="Standard 5-field cron expression, evaluated in timeZone.",
    )
    time_zone: str = Field(
        default="UTC", min_length=1, max_length=64, description="IANA time zone of the schedule."
    )
    input: AnyJson = Field(default=None, description="The input of every run.")
    config: FreeForm | None = Field(default=None, description="Run config (configurable, tags).")
    context: FreeForm | None = Field(default=None, description="Run context.")
    thread_id: str | None = Field(
        default=None,
        pattern=UUID_PATTERN,
        description="Stateful: every run appends to this thread (created if missing). "
        "Unset: each run gets a fresh thread.",
    )
    on_run_completed: Literal["Delete", "Keep"] | None = Field(
        default=None,
        description="Stateless only: delete the run's thread when it ends (default) or keep it.",
    )
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = Field(
        default="Forbid",
        description="When a tick comes while a run of this cron is active: start anyway, "
        "skip the tick (default), or cancel the active run first.",
    )
    starting_deadline_seconds: int | None = Field(
        default=None,
        ge=0,
        description="A tick later than this (after downtime) is missed, not run.",
    )
    suspend: bool = Field(default=False, description="Stop future ticks; running runs go on.")
    end_time: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="No ticks after this time.",
    )
    webhook: str | None = Field(
        default=None, max_length=4096, description="URL called when each run ends."
    )
    successful_runs_history_limit: int = Field(
        default=3, ge=0, description="Kept threads of successful runs (onRunCompleted Keep)."
    )
    failed_runs_history_limit: int = Field(
        default=1, ge=0, description="Kept threads of failed runs (onRunCompleted Keep)."
    )

    @model_validator(mode="after")
    def _cross_field(self) -> AgentCronSpec:
        if not re.search(SCHEDULE_PATTERN, self.schedule):
            raise ValueError("schedule must be a standard cron expression with 5 fields")
        if "TZ" in self.schedule:
            raise ValueError("schedule must not set a time zone (CRON_TZ/TZ); use spec.timeZone")
        if not re.search(TIME_ZONE_PATTERN, self.time_zone):
            raise ValueError("timeZone must be an IANA time zone name")
        if self.thread_id is not None and self.on_run_completed is not None:
            raise ValueError("onRunCompleted applies only to stateless crons (without threadId)")
        return self


class AgentCronStatus(BerthModel):
    """Written by the runtime of the referenced AgentDeployment (the operator only reports a
    missing deployment)."""

    observed_generation: int | None = None
    conditions: Conditions | None = None
    cron_id: str | None = Field(default=None, description="The runtime's cron_id.")
    last_schedule_time: str | None = Field(
        default=None, json_schema_extra={"format": "date-time"}, description="Last started tick."
    )
    last_successful_time: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="Tick of the last run that succeeded.",
    )
    next_schedule_time: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    last_run_id: str | None = None
    active: list[str] | None = Field(default=None, description="Run ids of active runs.")


def parse_spec(spec: Any) -> AgentCronSpec:
    return AgentCronSpec.model_validate(spec)
