"""Keep this runtime's cron rows in line with the AgentCrons that name its AgentDeployment.

Level-triggered, every ``BERTH_AGENTCRON_SYNC_SECONDS`` (default 10): list the namespace's
AgentCrons, upsert a row for each valid one whose ``deploymentRef`` is this deployment
(skipped when nothing changed), delete owned rows whose AgentCron is gone, invalid or moved
to another deployment, and write each AgentCron's status when it differs. Every replica may
run it: the writes are idempotent. Events for ticks are posted by the replica that fired.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError

from berth_runtime.assistants import resolve_assistant
from berth_runtime.context import Runtime
from berth_runtime.crons.agentcron import (
    Problem,
    check,
    cron_id_of,
    cron_row,
    deployment_of,
    source_prefix,
    status_changed,
    status_of,
)
from berth_runtime.crons.clock import Clock
from berth_runtime.crons.fire import run_request
from berth_runtime.crons.kube import KubeLink
from berth_runtime.crons.scheduler import following, log_report
from berth_runtime.db import q
from berth_runtime.webhooks.policy import check_url

log = logging.getLogger(__name__)

INTERVAL_ENV = "BERTH_AGENTCRON_SYNC_SECONDS"


def interval_from_env(env: Mapping[str, str]) -> float:
    try:
        return max(0.05, float(env.get(INTERVAL_ENV) or 10.0))
    except ValueError:
        return 10.0


def _stalled(obj: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Stalled" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or ()
    )


@dataclass
class AgentCronSync:
    rt: Runtime
    link: KubeLink
    clock: Clock
    interval: float = 10.0
    task: asyncio.Task[None] = field(init=False)

    async def report(self, cron: dict[str, Any], reason: str, message: str, warning: bool) -> None:
        """Log a tick decision and post it as an Event of the owning AgentCron."""
        await log_report(cron, reason, message, warning)
        meta = cron.get("metadata") or {}
        if not cron.get("source") or not meta.get("agentcron_uid"):
            return
        try:
            await asyncio.to_thread(
                self.link.event, meta["agentcron"], meta["agentcron_uid"], reason, message, warning
            )
        except Exception as e:
            log.warning("event %s for AgentCron %s failed: %r", reason, meta["agentcron"], e)

    async def _problem(self, obj: Mapping[str, Any]) -> tuple[Problem | None, Any]:
        spec = obj.get("spec") or {}
        problem = check(spec)
        if problem is not None:
            return problem, None
        try:
            assistant = await resolve_assistant(self.rt, str(spec.get("assistantId")))
        except HTTPException as e:
            return Problem("AssistantNotFound", str(e.detail)), None
        webhook = spec.get("webhook")
        if webhook:
            why = check_url(webhook, self.rt.config.webhooks)
            if why is not None:
                return Problem("InvalidWebhook", f"webhook {webhook!r}: {why}"), None
        return None, assistant

    async def sync_one(self, obj: Mapping[str, Any]) -> str | None:
        """Bring one AgentCron's row and status in line; its cron_id if the row stays."""
        meta = obj["metadata"]
        problem, assistant = await self._problem(obj)
        cron: dict[str, Any] | None = None
        summary: dict[str, Any] | None = None
        if problem is None:
            row = cron_row(obj, self.link.deployment, assistant["assistant_id"])
            try:
                run_request(row)
            except ValidationError as e:
                problem = Problem("InvalidRunFields", str(e.errors()[0]["msg"]))
        if problem is None:
            row["next_run_date"] = following(row, self.clock.now()) if row["enabled"] else None
            async with self.rt.pool.connection() as conn:
                written = await q.fetchone(conn, "upsert_owned_cron", **row)
                found = await q.fetchone(conn, "get_cron", cron_id=row["cron_id"])
                cron = dict(found) if found else None
                got = await q.fetchone(conn, "cron_tick_summary", cron_id=row["cron_id"])
                summary = dict(got) if got else None
            if written is not None:
                log.info(
                    "AgentCron %s: cron %s written (enabled=%s, next %s)",
                    meta["name"],
                    row["cron_id"],
                    row["enabled"],
                    row["next_run_date"],
                )
        status = status_of(obj, cron, summary, problem, datetime.now(UTC))
        if status_changed(status, obj.get("status")):
            await asyncio.to_thread(self.link.patch_status, meta["name"], status)
        if problem is not None and not _stalled(obj):
            log.warning("AgentCron %s: %s: %s", meta["name"], problem.reason, problem.message)
            try:
                await asyncio.to_thread(
                    self.link.event,
                    meta["name"],
                    meta["uid"],
                    problem.reason,
                    problem.message,
                    True,
                )
            except Exception as e:
                log.warning("event for AgentCron %s failed: %r", meta["name"], e)
        return None if problem is not None else str(cron_id_of(meta["uid"]))

    async def sync_once(self) -> None:
        objs = await asyncio.to_thread(self.link.list_agentcrons)
        keep: list[str] = []
        for obj in objs:
            if deployment_of(obj) != self.link.deployment:
                continue
            if obj["metadata"].get("deletionTimestamp"):
                continue
            try:
                kept = await self.sync_one(obj)
            except Exception:
                log.exception("sync of AgentCron %s failed", obj["metadata"].get("name"))
                kept = str(cron_id_of(obj["metadata"]["uid"]))  # keep it on a transient failure
            if kept is not None:
                keep.append(kept)
        prefix = source_prefix(self.link.namespace, self.link.deployment)
        async with self.rt.pool.connection() as conn:
            removed = await q.fetchall(conn, "delete_owned_crons_except", prefix=prefix, keep=keep)
        for row in removed:
            log.info(
                "cron %s removed: AgentCron %s is gone or invalid", row["cron_id"], row["source"]
            )

    async def run(self) -> None:
        log.info("AgentCron sync for %s/%s every %ss",
                 self.link.namespace, self.link.deployment, self.interval)  # fmt: skip
        while True:
            try:
                await self.sync_once()
            except Exception as e:
                log.warning("AgentCron sync failed: %r", e)
            await asyncio.sleep(self.interval)


def start_agentcron_sync(rt: Runtime, clock: Clock, env: Mapping[str, str]) -> AgentCronSync | None:
    """Start the sync task when the process knows its AgentDeployment (env set by the operator)."""
    try:
        link = KubeLink.from_env(env)
    except Exception as e:
        log.warning("AgentCron sync off: no Kubernetes credentials (%r)", e)
        return None
    if link is None:
        return None
    sync = AgentCronSync(rt, link, clock, interval_from_env(env))
    sync.task = asyncio.create_task(sync.run(), name="berth-agentcron-sync")
    return sync
