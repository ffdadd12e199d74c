"""Turn a cron row into a run create request (pure)."""

from __future__ import annotations

from typing import Any

from berth_runtime.models import RunCreateStateful, RunCreateStateless

# Run fields a cron carries in its payload.
RUN_FIELDS = (
    "assistant_id",
    "input",
    "config",
    "context",
    "webhook",
    "interrupt_before",
    "interrupt_after",
    "stream_mode",
    "stream_subgraphs",
    "stream_resumable",
    "durability",
    "multitask_strategy",
)


def payload_of(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: fields[k] for k in RUN_FIELDS if fields.get(k) is not None}


def run_request(cron: dict[str, Any]) -> RunCreateStateful | RunCreateStateless:
    payload = dict(cron["payload"])
    payload["assistant_id"] = payload.get("assistant_id") or str(cron["assistant_id"])
    payload["metadata"] = {**(cron.get("metadata") or {}), "cron_id": str(cron["cron_id"])}
    if cron.get("thread_id") is not None:
        return RunCreateStateful.model_validate(payload)
    payload.pop("multitask_strategy", None)
    payload["on_completion"] = cron.get("on_run_completed") or "delete"
    return RunCreateStateless.model_validate(payload)
