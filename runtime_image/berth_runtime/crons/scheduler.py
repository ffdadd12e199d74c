"""Fire due crons with CronJob semantics, replica-safe and idempotent per tick.

One pass: copy the outcome of ended runs onto their ticks (and prune kept threads beyond
the history limits), then for each due cron claim the fire with a guarded UPDATE of
``next_run_date`` plus an INSERT of the tick's ``(cron_id, scheduled_at)`` row in one
transaction. Only the claimer acts: it marks a late tick missed, or applies the concurrency
policy and starts the run. Decisions are the pure functions of `policy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import HTTPException

from berth_runtime import faults
from berth_runtime.context import Runtime
from berth_runtime.crons.clock import Clock, SystemClock, clock_from_env
from berth_runtime.crons.fire import run_request
from berth_runtime.crons.policy import (
    concurrency,
    next_tick,
    plan_tick,
    recovered_tick_missed,
    tick_key,
    tick_run_id,
)
from berth_runtime.crons.schedule import ScheduleError
from berth_runtime.db import q
from berth_runtime.queue.cancel import cancel_run
from berth_runtime.queue.enqueue import create_run
from berth_runtime.queue.settle import delete_thread_everywhere

log = logging.getLogger(__name__)

# report(cron row, event reason, message, warning?) -> Events of the owning AgentCron
Report = Callable[[dict[str, Any], str, str, bool], Awaitable[None]]


async def log_report(cron: dict[str, Any], reason: str, message: str, warning: bool) -> None:
    log.log(logging.WARNING if warning else logging.INFO, "cron %s: %s: %s",
            cron["cron_id"], reason, message)  # fmt: skip


def following(cron: dict[str, Any], after: datetime) -> datetime | None:
    """The next fire after `after`, or None once past the cron's end_time."""
    try:
        return next_tick(cron["schedule"], cron["timezone"], after, cron.get("end_time"))
    except ScheduleError:
        return None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def settle_ticks(rt: Runtime) -> int:
    """Record how started runs ended; drop kept threads beyond the history limits."""
    async with rt.pool.connection() as conn:
        settled = await q.fetchall(conn, "settle_ticks")
        expired = await q.fetchall(conn, "expired_kept_threads")
    for row in expired:
        await delete_thread_everywhere(rt, str(row["thread_id"]))
        async with rt.pool.connection() as conn:
            await q.execute(
                conn, "forget_tick_thread", cron_id=row["cron_id"], scheduled_at=row["scheduled_at"]
            )
        log.info("cron %s: thread %s beyond the history limit, deleted",
                 row["cron_id"], row["thread_id"])  # fmt: skip
    return len(settled)


TICKS_KEPT = 100
PRUNE_EVERY_SECONDS = 600.0


async def prune_ticks(rt: Runtime, keep: int = TICKS_KEPT) -> int:
    """Bound the tick table: the newest `keep` ticks per cron (plus those still in use)."""
    async with rt.pool.connection() as conn:
        return len(await q.fetchall(conn, "prune_ticks", keep=keep))


async def fire_due(rt: Runtime, clock: Clock | None = None, report: Report | None = None) -> int:
    """Act on every due cron; the number of runs started."""
    now = (clock or SystemClock()).now()
    async with rt.pool.connection() as conn:
        due = await q.fetchall(conn, "due_crons", limit=50, now=now)
    started = 0
    for row in due:
        try:
            started += await fire_one(rt, dict(row), now, report or log_report)
        except (psycopg.Error, OSError):
            raise
        except Exception:
            log.exception("cron %s failed to fire", row["cron_id"])
    return started


async def _set_tick(rt: Runtime, cron_id: Any, at: datetime, decision: str, **kw: Any) -> None:
    async with rt.pool.connection() as conn:
        await q.execute(
            conn,
            "set_tick",
            cron_id=cron_id,
            scheduled_at=at,
            decision=decision,
            reason=kw.get("reason"),
            run_id=kw.get("run_id"),
            thread_id=kw.get("thread_id"),
        )


async def fire_one(rt: Runtime, cron: dict[str, Any], now: datetime, report: Report) -> int:
    cron_id = cron["cron_id"]
    try:
        plan = plan_tick(
            cron["schedule"],
            cron["timezone"],
            cron["next_run_date"],
            now,
            cron.get("starting_deadline_seconds"),
            cron.get("end_time"),
        )
    except ScheduleError as e:
        log.warning("cron %s: %s; not scheduled any more", cron_id, e)
        async with rt.pool.connection() as conn:
            await q.fetchone(
                conn, "advance_cron", cron_id=cron_id, due=cron["next_run_date"], next_run_date=None
            )
        return 0
    async with rt.pool.connection() as conn, conn.transaction():
        claimed = await q.fetchone(
            conn,
            "advance_cron",
            cron_id=cron_id,
            due=cron["next_run_date"],
            next_run_date=plan.next_run,
        )
        tick = None
        if claimed is not None:
            tick = await q.fetchone(
                conn, "claim_tick", cron_id=cron_id, scheduled_at=plan.scheduled
            )
    if claimed is None:
        return 0  # another scheduler moved next_run_date first
    at = plan.scheduled
    if tick is None:
        log.info("cron %s: tick %s was already handled; not starting it again", cron_id, _iso(at))
        return 0
    # A crash here leaves the tick 'claimed' with no run: recover_ticks fires it later.
    await faults.point("cron.after_claim")
    if plan.action == "missed":
        why = (
            f"tick {_iso(at)} missed: {plan.late_seconds:.0f}s late, more than "
            f"startingDeadlineSeconds {cron.get('starting_deadline_seconds')}"
        )
        await _set_tick(rt, cron_id, at, "missed", reason=why)
        await report(cron, "MissedSchedule", why, True)
        return 0
    if plan.skipped_ticks:
        await report(
            cron,
            "MissedSchedule",
            f"{plan.skipped_ticks} earlier tick(s) missed while down; running only {_iso(at)}",
            True,
        )
    return await start_tick(rt, cron, at, report)


async def start_tick(rt: Runtime, cron: dict[str, Any], at: datetime, report: Report) -> int:
    """Apply the concurrency policy to a claimed tick and start its run; 1 if it started one.

    The run's id is the tick's (policy.tick_run_id): if another scheduler already started
    it (a recovered tick whose first scheduler was only slow), the primary key says so."""
    cron_id = cron["cron_id"]
    async with rt.pool.connection() as conn:
        active = [dict(r) for r in await q.fetchall(conn, "active_cron_runs", cron_id=cron_id)]
    decision = concurrency(cron.get("concurrency_policy") or "allow", len(active))
    if decision == "skip":
        ids = ", ".join(str(r["run_id"]) for r in active)
        why = f"tick {_iso(at)} skipped: concurrencyPolicy Forbid and run {ids} is still active"
        await _set_tick(rt, cron_id, at, "skipped", reason=why)
        await report(cron, "TickSkipped", why, False)
        return 0
    if decision == "replace":
        for run in active:
            await cancel_run(rt, run, "interrupt")
        ids = ", ".join(str(r["run_id"]) for r in active)
        await report(cron, "Replaced", f"cancelled run {ids} for tick {_iso(at)}", False)
    meta = {**(cron.get("metadata") or {}), "cron_tick": tick_key(str(cron_id), at)}
    thread_id = str(cron["thread_id"]) if cron["thread_id"] else None
    run_id = tick_run_id(str(cron_id), at)
    try:
        run = await create_run(
            rt, run_request({**cron, "metadata": meta}), thread_id, run_id=run_id
        )
    except psycopg.errors.UniqueViolation:
        async with rt.pool.connection() as conn:
            existing = await q.fetchone(conn, "get_run_by_id", run_id=run_id)
        if existing is None:
            raise
        log.info("cron %s: tick %s already started run %s", cron_id, _iso(at), run_id)
        await _set_tick(rt, cron_id, at, "started", run_id=run_id,
                        thread_id=existing["thread_id"])  # fmt: skip
        return 0
    except HTTPException as e:
        why = f"tick {_iso(at)} could not start a run: {e.detail}"
        await _set_tick(rt, cron_id, at, "failed", reason=why)
        await report(cron, "FailedToStart", why, True)
        return 0
    await _set_tick(rt, cron_id, at, "started", run_id=run["run_id"], thread_id=run["thread_id"])
    await report(cron, "Started", f"tick {_iso(at)} started run {run['run_id']}", False)
    log.info("cron %s fired run %s for %s", cron_id, run["run_id"], _iso(at))
    return 1


# A tick still 'claimed' this long after its claim lost its scheduler (firing takes
# milliseconds): another scheduler takes it over (BERTH_CRON_TICK_RECOVER_SECONDS).
TICK_RECOVER_SECONDS = 30.0


async def recover_ticks(
    rt: Runtime,
    clock: Clock | None = None,
    report: Report | None = None,
    after_seconds: float = TICK_RECOVER_SECONDS,
) -> int:
    """Fire the ticks whose scheduler died between claiming them and starting their run.

    Each is taken over with a guarded UPDATE (its claim time moves to now, so one scheduler
    gets it); the run keeps the tick's id, so a slow first scheduler cannot add another."""
    now = (clock or SystemClock()).now()
    async with rt.pool.connection() as conn:
        taken = await q.fetchall(conn, "take_abandoned_ticks", seconds=after_seconds, limit=50)
    started = 0
    for tick in taken:
        async with rt.pool.connection() as conn:
            row = await q.fetchone(conn, "get_cron", cron_id=tick["cron_id"])
        if row is None:
            continue
        cron, at = dict(row), tick["scheduled_at"]
        log.warning("cron %s: tick %s lost its scheduler after the claim; firing it now",
                    cron["cron_id"], _iso(at))  # fmt: skip
        if recovered_tick_missed(at, now, cron.get("starting_deadline_seconds")):
            why = (
                f"tick {_iso(at)} missed: its scheduler died, and it is now past "
                f"startingDeadlineSeconds {cron.get('starting_deadline_seconds')}"
            )
            await _set_tick(rt, cron["cron_id"], at, "missed", reason=why)
            await (report or log_report)(cron, "MissedSchedule", why, True)
            continue
        try:
            started += await start_tick(rt, cron, at, report or log_report)
        except (psycopg.Error, OSError):
            raise
        except Exception:
            log.exception("cron %s failed to fire recovered tick %s", cron["cron_id"], _iso(at))
    return started


async def scheduler_pass(
    rt: Runtime, clock: Clock, report: Report, recover_after: float = TICK_RECOVER_SECONDS
) -> int:
    await settle_ticks(rt)
    recovered = await recover_ticks(rt, clock, report, recover_after)
    return recovered + await fire_due(rt, clock, report)


async def scheduler_loop(rt: Runtime) -> None:
    """The cron loop of a worker process; with a Kubernetes link it also syncs AgentCrons."""
    clock = clock_from_env(os.environ)
    report: Report = log_report
    if os.environ.get("BERTH_DEPLOYMENT_NAME"):
        # The sync pulls in the Kubernetes client (seconds of CPU to import): only when the
        # operator told this process which AgentDeployment it serves, and off the event loop.
        sync_mod = await asyncio.to_thread(importlib.import_module, "berth_runtime.crons.sync")
        sync = sync_mod.start_agentcron_sync(rt, clock, os.environ)
        if sync is not None:
            report = sync.report
    recover_after = float(os.environ.get("BERTH_CRON_TICK_RECOVER_SECONDS", TICK_RECOVER_SECONDS))
    loop = asyncio.get_running_loop()
    pruned_at = loop.time()
    try:
        while True:
            await asyncio.sleep(rt.settings.cron_interval_seconds)
            try:
                await scheduler_pass(rt, clock, report, recover_after)
                if loop.time() - pruned_at >= PRUNE_EVERY_SECONDS:
                    pruned_at = loop.time()
                    await prune_ticks(rt)
            except (psycopg.Error, OSError) as e:
                log.warning("cron scheduler pass failed: %r", e)
            except Exception:
                log.exception("cron scheduler pass failed")
    finally:
        if sync is not None:
            sync.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sync.task
