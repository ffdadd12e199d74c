"""Fire due crons: claim each fire with a guarded UPDATE, then create its run."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import psycopg
from fastapi import HTTPException

from berth_runtime.context import Runtime
from berth_runtime.crons.fire import run_request
from berth_runtime.crons.schedule import ScheduleError, next_fire
from berth_runtime.db import q
from berth_runtime.queue.enqueue import create_run

log = logging.getLogger(__name__)


def following(cron: dict[str, Any], after: datetime) -> datetime | None:
    """The next fire after `after`, or None once past the cron's end_time."""
    try:
        nxt = next_fire(cron["schedule"], cron["timezone"], after)
    except ScheduleError:
        return None
    end = cron.get("end_time")
    return None if end is not None and nxt > end else nxt


async def fire_due(rt: Runtime) -> int:
    async with rt.pool.connection() as conn:
        due = await q.fetchall(conn, "due_crons", limit=50)
        now_row = await q.fetchone(conn, "clock")
    now = now_row["now"] if now_row else None
    fired = 0
    for row in due:
        cron = dict(row)
        after = max(cron["next_run_date"], now) if now else cron["next_run_date"]
        async with rt.pool.connection() as conn:
            claimed = await q.fetchone(
                conn,
                "advance_cron",
                cron_id=cron["cron_id"],
                due=cron["next_run_date"],
                next_run_date=following(cron, after),
            )
        if claimed is None:
            continue  # another scheduler fired it
        thread_id = str(cron["thread_id"]) if cron["thread_id"] else None
        try:
            run = await create_run(rt, run_request(cron), thread_id)
            fired += 1
            log.info("cron %s fired run %s", cron["cron_id"], run["run_id"])
        except HTTPException as e:
            log.warning("cron %s could not start a run: %s", cron["cron_id"], e.detail)
        except Exception:
            log.exception("cron %s failed to fire", cron["cron_id"])
    return fired


async def scheduler_loop(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(rt.settings.cron_interval_seconds)
        try:
            await fire_due(rt)
        except (psycopg.Error, OSError) as e:
            log.warning("cron scheduler pass failed: %r", e)
        except Exception:
            log.exception("cron scheduler pass failed")
