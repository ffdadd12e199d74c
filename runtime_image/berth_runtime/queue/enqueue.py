"""Create a run: the one transaction that puts a run row (a queue entry) in Postgres.

Lock the thread, apply the multitask strategy against the runs in flight, insert the run,
mark the thread busy; then Redis wakes a worker (without Redis, a worker's poll finds it).
Used by the HTTP routes and by the cron scheduler alike.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from fastapi import HTTPException

from berth_runtime.api.common import assistant_uuid, found_assistant, parse_uuid
from berth_runtime.config import WebhookPolicy
from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.models import RunCreateStateful, RunCreateStateless, _RunCreate
from berth_runtime.webhooks.policy import check_url


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Assistant config overlaid with the run's config (configurable keys merged)."""
    out = copy.deepcopy(base or {})
    for key, value in (override or {}).items():
        if key == "configurable" and isinstance(value, dict):
            out["configurable"] = {**out.get("configurable", {}), **value}
        elif key == "metadata" and isinstance(value, dict):
            out["metadata"] = {**out.get("metadata", {}), **value}
        else:
            out[key] = value
    return out


def run_kwargs(body: _RunCreate, assistant: dict[str, Any], stateless: bool) -> dict[str, Any]:
    config = merge_config(assistant.get("config") or {}, body.config)
    if isinstance(body, RunCreateStateful):
        conf = config.setdefault("configurable", {})
        if body.checkpoint is not None:
            for key in ("checkpoint_id", "checkpoint_ns", "checkpoint_map"):
                value = getattr(body.checkpoint, key)
                if value is not None:
                    conf[key] = value
        if body.checkpoint_id:
            conf["checkpoint_id"] = body.checkpoint_id
    context = {**(assistant.get("context") or {}), **(body.context or {})}
    durability = body.durability
    if durability is None and body.checkpoint_during is not None:
        durability = "async" if body.checkpoint_during else "exit"
    return {
        "input": body.input,
        "command": body.command.model_dump(exclude_unset=True) if body.command else None,
        "config": config,
        "context": context or None,
        "stream_mode": body.stream_modes(),
        "subgraphs": body.stream_subgraphs,
        "resumable": body.stream_resumable,
        "interrupt_before": body.interrupt_before,
        "interrupt_after": body.interrupt_after,
        "webhook": body.webhook,
        "feedback_keys": body.feedback_keys,
        "durability": durability,
        "temporary": stateless,
        "on_completion": body.on_completion if isinstance(body, RunCreateStateless) else None,
        "graph_id": assistant["graph_id"],
    }


def _validate(body: _RunCreate, stateless: bool, policy: WebhookPolicy) -> None:
    if stateless and body.command is not None and "resume" in body.command.model_fields_set:
        raise HTTPException(400, "Cannot resume a run without a thread: command.resume needs one")
    if body.config.get("configurable") and body.context:
        raise HTTPException(400, "Cannot specify both configurable and context. Use context only.")
    if body.webhook is not None:
        reason = check_url(body.webhook, policy)
        if reason is not None:
            raise HTTPException(422, reason)


async def create_run(rt: Runtime, body: _RunCreate, thread_id: str | None) -> dict[str, Any]:
    stateless = thread_id is None
    _validate(body, stateless, rt.config.webhooks)
    aid = assistant_uuid(rt, body.assistant_id)
    tid = uuid.uuid4() if thread_id is None else parse_uuid(thread_id, "thread_id")
    strategy = body.multitask_strategy if isinstance(body, RunCreateStateful) else "enqueue"
    run_id = uuid.uuid4()
    to_cancel: list[str] = []
    # One connection and, in the common case, two round trips: the assistant, BEGIN, the thread
    # lock and the runs in flight go out together (pipelined, still one statement after the
    # other, so the in-flight read sees everything committed before the lock was granted);
    # then the insert, the thread update and COMMIT.
    async with rt.pool.connection() as conn, conn.pipeline(), conn.transaction():
        assistant_cur = await conn.execute(q.sql_bytes("get_assistant"), {"assistant_id": aid})
        if thread_id is not None:
            lock_cur = await conn.execute(q.sql_bytes("lock_thread"), {"thread_id": tid})
            inflight_cur = await conn.execute(q.sql_bytes("inflight_runs"), {"thread_id": tid})
        assistant = found_assistant(await assistant_cur.fetchone(), body.assistant_id)
        if assistant["graph_id"] not in rt.graphs:
            raise HTTPException(404, f"Graph '{assistant['graph_id']}' not found")
        kwargs = run_kwargs(body, assistant, stateless)
        thread_meta = {
            "graph_id": assistant["graph_id"],
            "assistant_id": str(assistant["assistant_id"]),
        }
        if thread_id is None:
            await q.execute(
                conn,
                "insert_thread",
                thread_id=tid,
                # The run's metadata (with its owner, see auth/ownership.py) goes to the thread.
                metadata={**body.metadata, **thread_meta},
                config={},
                ttl=None,
                # `on_completion=keep` leaves an ordinary thread behind; `delete` hides it.
                temporary=getattr(body, "on_completion", "delete") == "delete",
            )
            inflight: list[Any] = []
        else:
            thread = await lock_cur.fetchone()
            inflight = await inflight_cur.fetchall()
            if thread is None or thread["temporary"]:
                if isinstance(body, RunCreateStateful) and body.if_not_exists == "create":
                    await q.execute(
                        conn,
                        "insert_thread",
                        thread_id=tid,
                        metadata=thread_meta,
                        config={},
                        ttl=None,
                        temporary=False,
                    )
                    await q.returning(conn, "lock_thread", thread_id=tid)
                    inflight = await q.returning(conn, "inflight_runs", thread_id=tid)
                else:
                    raise HTTPException(404, f"Thread '{thread_id}' not found")
            if inflight and strategy == "reject":
                raise HTTPException(
                    409,
                    "Thread is already running a task. Wait for it to finish or choose a "
                    "different multitask strategy.",
                )
        run_cur = await conn.execute(
            q.sql_bytes("insert_run"),
            q.adapt(
                {
                    "run_id": run_id,
                    "thread_id": tid,
                    "assistant_id": assistant["assistant_id"],
                    "metadata": body.metadata,
                    "kwargs": kwargs,
                    "multitask_strategy": strategy,
                    "after_seconds": body.after_seconds,
                    "temporary": stateless,
                }
            ),
        )
        await conn.execute(
            q.sql_bytes("mark_thread_busy"), q.adapt({"thread_id": tid, "metadata": thread_meta})
        )
        if inflight and strategy in ("interrupt", "rollback"):
            ids = [r["run_id"] for r in inflight]
            if strategy == "rollback":
                await q.returning(conn, "delete_pending", run_ids=ids)
            else:
                await q.returning(conn, "cancel_pending", run_ids=ids, action=strategy)
            running = await q.returning(conn, "request_cancel", run_ids=ids, action=strategy)
            to_cancel = [str(r["run_id"]) for r in running]
        run = await run_cur.fetchone()
    for rid in to_cancel:
        await rt.bus.publish_cancel(rid, strategy)
    await rt.bus.wake()
    assert run is not None
    return dict(run)
