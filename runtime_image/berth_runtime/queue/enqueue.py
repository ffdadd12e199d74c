"""Create a run: the one transaction that puts a run row (a queue entry) in Postgres.

Lock the thread, apply the multitask strategy against the runs in flight, insert the run,
mark the thread busy; then Redis wakes a worker (without Redis, a worker's poll finds it).
When there is nothing to decide (a new stateless thread, or a thread with no run in flight or
the `enqueue` strategy) that is one server-side function call (`berth_enqueue_run`); otherwise
the general path does it statement by statement in one transaction.
Used by the HTTP routes and by the cron scheduler alike.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from psycopg.rows import DictRow

from berth_runtime.assistants import assistant_uuid, found_assistant, parse_uuid
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


def run_context(
    body: _RunCreate, assistant: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    """The run's context as the Agent Server builds it: the assistant's context overlaid with
    the run's, where a run without a context lends its `configurable` (the pre-0.6 style)
    and a run with one mirrors it into `configurable` (nodes reading either see the same).
    Always a dict, so a graph's `context_schema` is built from its defaults when empty."""
    own = dict(body.context or {})
    if own:
        config.setdefault("configurable", {}).update(own)
    else:
        own = dict((body.config or {}).get("configurable") or {})
    return {**(assistant.get("context") or {}), **own}


def run_kwargs(
    body: _RunCreate,
    assistant: dict[str, Any],
    stateless: bool,
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config = merge_config(assistant.get("config") or {}, body.config)
    context = run_context(body, assistant, config)
    if isinstance(body, RunCreateStateful):
        conf = config.setdefault("configurable", {})
        if body.checkpoint is not None:
            for key in ("checkpoint_id", "checkpoint_ns", "checkpoint_map"):
                value = getattr(body.checkpoint, key)
                if value is not None:
                    conf[key] = value
        if body.checkpoint_id:
            conf["checkpoint_id"] = body.checkpoint_id
    durability = body.durability
    if durability is None and body.checkpoint_during is not None:
        durability = "async" if body.checkpoint_during else "exit"
    return {
        "input": body.input,
        "command": body.command.model_dump(exclude_unset=True) if body.command else None,
        "config": config,
        "context": context,
        # Keys the graph's context schema drops leave `configurable` too, but only when the
        # caller sent a context (see executor.run.schema_context).
        "context_provided": bool(body.context),
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
        # Who asked for the run (custom auth): nodes read it as `langgraph_auth_user_id`, and
        # Agent Auth keys the user's OAuth tokens by it.
        "user": user,
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


PENDING_COUNT_MAX_AGE = 0.5


async def _check_queue_depth(rt: Runtime) -> None:
    """Shed new runs with 429 while the queue holds BERTH_MAX_PENDING_RUNS or more (0: no
    limit). The count is read at most every half second per process, so a burst may pass
    the limit by what arrives within that time."""
    limit = rt.settings.max_pending_runs
    if limit <= 0:
        return
    loop = asyncio.get_running_loop()
    when, pending = rt.pending_seen
    if loop.time() - when > PENDING_COUNT_MAX_AGE:
        async with rt.pool.connection() as conn:
            row = await q.fetchone(conn, "count_pending_runs")
        pending = int(row["n"]) if row else 0
        rt.pending_seen = (loop.time(), pending)
    if pending >= limit:
        raise HTTPException(
            429,
            f"{pending} runs are waiting, the limit is {limit} (BERTH_MAX_PENDING_RUNS): "
            "retry later",
            headers={"Retry-After": "5"},
        )


async def create_run(
    rt: Runtime,
    body: _RunCreate,
    thread_id: str | None,
    user: dict[str, Any] | None = None,
    run_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Create a run. `run_id`: a caller's own id (a cron tick's, derived from its key), so a
    second creation of the same run fails on the primary key instead of adding another."""
    stateless = thread_id is None
    _validate(body, stateless, rt.config.webhooks)
    await _check_queue_depth(rt)
    aid = assistant_uuid(rt, body.assistant_id)
    plan = _Plan(
        body=body,
        run_id=run_id or uuid.uuid4(),
        thread_id=uuid.uuid4() if thread_id is None else parse_uuid(thread_id, "thread_id"),
        strategy=body.multitask_strategy if isinstance(body, RunCreateStateful) else "enqueue",
        stateless=stateless,
        user=user,
    )
    to_cancel: list[str] = []
    async with rt.pool.connection() as conn:
        cached = rt.assistants.get(aid)
        run = None if cached is None else await _enqueue(rt, conn, plan, cached)
        for _ in range(3):  # the assistant may change between reading it and using it
            if run is not None:
                break
            assistant = found_assistant(
                await q.fetchone(conn, "get_assistant", assistant_id=aid), body.assistant_id
            )
            rt.assistants.put(assistant)
            if cached is None or cached["updated_at"] != assistant["updated_at"]:
                run = await _enqueue(rt, conn, plan, assistant)
            if run is None and thread_id is not None:
                # Not the common case: something to decide, under the thread's lock.
                run, to_cancel = await _create_on_busy_thread(conn, plan, thread_id, assistant)
            cached = assistant
    if run is None:
        raise HTTPException(
            409, f"Assistant '{body.assistant_id}' kept changing while the run was created"
        )
    for rid in to_cancel:
        await rt.bus.publish_cancel(rid, plan.strategy)
    await rt.bus.wake()
    return dict(run)


@dataclass(frozen=True)
class _Plan:
    """A run about to be created; its row depends on the assistant it is built from."""

    body: _RunCreate
    run_id: uuid.UUID
    thread_id: uuid.UUID
    strategy: str
    stateless: bool
    user: dict[str, Any] | None = None

    def params(self, assistant: dict[str, Any]) -> dict[str, Any]:
        """Parameters of insert_run."""
        return {
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "assistant_id": assistant["assistant_id"],
            "metadata": self.body.metadata,
            "kwargs": run_kwargs(self.body, assistant, self.stateless, self.user),
            "multitask_strategy": self.strategy,
            "after_seconds": self.body.after_seconds,
            "thread_metadata": {
                "graph_id": assistant["graph_id"],
                "assistant_id": str(assistant["assistant_id"]),
            },
        }


async def _enqueue(
    rt: Runtime, conn: q.Conn, plan: _Plan, assistant: dict[str, Any]
) -> DictRow | None:
    """The common case in one statement: a new stateless thread, or a thread with nothing to
    decide. No row: the assistant changed since it was read, or there is something to decide."""
    if assistant["graph_id"] not in rt.graphs:
        raise HTTPException(404, f"Graph '{assistant['graph_id']}' not found")
    params = plan.params(assistant)
    body = plan.body
    return await q.fetchone(
        conn,
        "enqueue_run",
        **params,
        assistant_updated_at=assistant["updated_at"],
        # The run's metadata (with its owner, see auth/ownership.py) goes to a new thread;
        # `on_completion=keep` leaves an ordinary thread behind, `delete` hides it.
        new_thread_metadata={**body.metadata, **params["thread_metadata"]}
        if plan.stateless
        else None,
        new_thread_temporary=getattr(body, "on_completion", "delete") == "delete",
    )


async def _create_on_busy_thread(
    conn: q.Conn, plan: _Plan, thread_id: str, assistant: dict[str, Any]
) -> tuple[DictRow, list[str]]:
    """The general path: lock the thread, then create it (`if_not_exists`), refuse (`reject`),
    or cancel the runs in flight (`interrupt`, `rollback`) before inserting the run."""
    body, strategy, tid = plan.body, plan.strategy, plan.thread_id
    run_params = plan.params(assistant)
    async with conn.transaction():
        thread = await q.fetchone(conn, "lock_thread", thread_id=tid)
        if thread is None or thread["temporary"]:
            if not (isinstance(body, RunCreateStateful) and body.if_not_exists == "create"):
                raise HTTPException(404, f"Thread '{thread_id}' not found")
            await q.execute(
                conn,
                "insert_thread",
                thread_id=tid,
                metadata=run_params["thread_metadata"],
                config={},
                ttl=None,
                temporary=False,
            )
            await q.fetchone(conn, "lock_thread", thread_id=tid)
        inflight = await q.fetchall(conn, "inflight_runs", thread_id=tid)
        if inflight and strategy == "reject":
            raise HTTPException(
                409,
                "Thread is already running a task. Wait for it to finish or choose a "
                "different multitask strategy.",
            )
        run = await q.fetchone(conn, "insert_run", **run_params, temporary=False)
        to_cancel: list[str] = []
        if inflight and strategy in ("interrupt", "rollback"):
            ids = [r["run_id"] for r in inflight]
            if strategy == "rollback":
                await q.fetchall(conn, "delete_pending", run_ids=ids)
            else:
                await q.fetchall(conn, "cancel_pending", run_ids=ids, action=strategy)
            running = await q.fetchall(conn, "request_cancel", run_ids=ids, action=strategy)
            to_cancel = [str(r["run_id"]) for r in running]
    assert run is not None
    return run, to_cancel
