"""Cancel a run: a pending run ends (or goes) at once; a running one is signalled."""

from __future__ import annotations

import logging
from typing import Any

from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.serde import dumps_bytes

log = logging.getLogger(__name__)


async def cancel_run(rt: Runtime, run: dict[str, Any], action: str) -> None:
    ids = [run["run_id"]]
    async with rt.pool.connection() as conn, conn.transaction():
        if action == "rollback":
            done = await q.fetchall(conn, "delete_pending", run_ids=ids)
        else:
            done = await q.fetchall(conn, "cancel_pending", run_ids=ids, action=action)
        running = await q.fetchall(conn, "request_cancel", run_ids=ids, action=action)
        if done:
            await q.execute(conn, "refresh_thread_status", thread_id=run["thread_id"])
    log.info(
        "run %s: %s requested (%s)",
        run["run_id"],
        action,
        "was pending" if done else "signalled" if running else "already over",
    )
    if done:
        await rt.bus.append_event(
            str(run["run_id"]),
            "end",
            dumps_bytes({"run_id": str(run["run_id"]), "status": "interrupted"}),
        )
        await rt.bus.wake()
    if running:
        await rt.bus.publish_cancel(str(run["run_id"]), action)
