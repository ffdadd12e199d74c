"""Queue worker: claim runs with a lease, heartbeat, execute, settle; reap lost runs.

Postgres decides who runs what (`claim_runs` uses FOR UPDATE SKIP LOCKED and the partial unique
index allows one running run per thread). Redis only shortens waits: wake-ups and cancel
signals. Without Redis the worker polls, and cancel requests arrive with the heartbeat.

A worker holds a liveness lock for its whole life (queue/liveness.py) and stamps it on the runs
it claims; every process's reaper re-queues, within `BERTH_LIVENESS_SECONDS`, the runs of a
worker whose lock Postgres released (the process or its session died), and those whose lease
lapsed (a worker hung but still connected).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.executor.run import Outcome, execute_run, thread_snapshot
from berth_runtime.metrics import WorkerStats
from berth_runtime.queue import settle
from berth_runtime.queue.liveness import LivenessLock
from berth_runtime.serde import dumps_bytes
from berth_runtime.streams.writer import RunEventWriter
from berth_runtime.telemetry import tracing
from berth_runtime.telemetry.logs import bound_run
from berth_runtime.webhooks.send import send_webhook

log = logging.getLogger(__name__)

TEMPORARY_RUN_KEEP_SECONDS = 600


@dataclass
class ActiveRun:
    run: dict[str, Any]
    exec_task: asyncio.Task[Outcome] | None = None
    task: asyncio.Task[None] | None = None
    reason: str | None = None  # interrupt | rollback | lost | shutdown


class Worker:
    def __init__(self, rt: Runtime, tag: str | None = None, slots: int | None = None) -> None:
        """`tag`: the last part of the owner name, also in the application name of the
        process's pool sessions (`berth <tag>`)."""
        self.rt = rt
        self.slots = max(0, rt.settings.n_jobs_per_worker if slots is None else slots)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{tag or uuid.uuid4().hex[:8]}"
        self._lost_locks: list[int] = []  # liveness locks whose session ended under us
        self.active: dict[str, ActiveRun] = {}
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self.finished: collections.Counter[str] = collections.Counter()
        self.stats = WorkerStats()
        self.liveness: LivenessLock | None = None
        if self.slots > 0 and rt.settings.liveness_lock:
            self.liveness = LivenessLock(
                rt.settings.database_uri, self._liveness_lost, rt.settings.liveness_seconds
            )

    # lifecycle -------------------------------------------------------------------------------

    async def start(
        self,
        housekeeping: bool = True,
        loops: Sequence[tuple[str, Callable[[Runtime], Coroutine[Any, Any, None]]]] = (),
    ) -> None:
        """Claim runs (if the worker has slots), reap lost runs, and run `loops` (named
        coroutines of the process, such as the cron scheduler's) until `stop`.

        `housekeeping=False` and no loops: only the reaper of lost runs (the `api` role).
        The cron scheduler is handed in by the process (`app`), not imported here: it sits
        above the queue (it creates runs through it).
        """
        if self.liveness is not None:
            await self.liveness.acquire()  # before the first claim
            self.liveness.start()
        if self.slots > 0:
            self._loops.append(asyncio.create_task(self._claim_loop(), name="berth-claim"))
            self._loops.append(asyncio.create_task(self._cancel_loop(), name="berth-cancel"))
        self._loops.append(asyncio.create_task(self._reaper_loop(), name="berth-reaper"))
        if housekeeping:
            self._loops.append(
                asyncio.create_task(self._housekeeping_loop(), name="berth-housekeeping")
            )
        for name, loop in loops:
            self._loops.append(asyncio.create_task(loop(self.rt), name=name))
        log.info("worker %s started with %s slots", self.owner, self.slots)

    def _liveness_lost(self, key: int) -> None:
        """Our liveness session ended: another process may re-queue our runs once our pool's
        sessions are gone too, and our reaper re-queues them as soon as it can reach
        Postgres. Either way they are no longer ours: stop them."""
        self._lost_locks.append(key)
        for ar in list(self.active.values()):
            self._interrupt(ar, "lost")

    def stop_claiming(self) -> None:
        self._stopping.set()
        self._slot_freed.set()

    async def shutdown(self, grace_seconds: float) -> None:
        """Stop claiming, let running runs finish within the grace period, re-queue the rest."""
        self.stop_claiming()
        running = [ar.task for ar in self.active.values() if ar.task is not None]
        if running:
            log.info("waiting up to %ss for %s running runs", grace_seconds, len(running))
            await asyncio.wait(running, timeout=grace_seconds)
        leftover = [ar for ar in self.active.values() if ar.task and not ar.task.done()]
        for ar in leftover:
            self._interrupt(ar, "shutdown")
        if leftover:
            await asyncio.wait([ar.task for ar in leftover if ar.task], timeout=15)
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
        if self.liveness is not None:
            await self.liveness.close()  # last: every run is settled or re-queued by now

    # claiming --------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        settings = self.rt.settings
        while not self._stopping.is_set():
            free = self.slots - len(self.active)
            if self.liveness is not None and not self.liveness.held:
                await self.liveness.wait_held()
                continue
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                rows = await self._claim(free)
            except psycopg.errors.UniqueViolation:
                # Two runs of one thread raced for the running slot; the other one won.
                await asyncio.sleep(0.01)
                continue
            except (psycopg.Error, OSError) as e:
                log.warning("claiming runs failed: %r", e)
                await asyncio.sleep(settings.poll_seconds)
                continue
            for row in rows:
                self._start_run(dict(row))
            if len(rows) < free and not self._stopping.is_set():
                await self.rt.bus.wait_for_wake(settings.poll_seconds)

    async def _claim(self, limit: int) -> list[Any]:
        async with self.rt.pool.connection() as conn:
            return await q.fetchall(
                conn,
                "claim_runs",
                limit=limit,
                owner=self.owner,
                owner_lock=self.liveness.key if self.liveness is not None else None,
                lease=self.rt.settings.lease_seconds,
            )

    def _start_run(self, run: dict[str, Any]) -> None:
        ar = ActiveRun(run)
        waited = _seconds_since(run.get("available_at"))
        if waited is not None:
            self.stats.wait.observe(waited)
        run_id = str(run["run_id"])
        self.active[run_id] = ar
        ar.task = asyncio.create_task(self._process(ar), name=f"berth-run-{run_id}")

    # one run ---------------------------------------------------------------------------------

    def _interrupt(self, ar: ActiveRun, reason: str) -> None:
        # Once the graph has finished, its outcome stands: nothing left to interrupt.
        if ar.reason is None and ar.exec_task is not None and not ar.exec_task.done():
            ar.reason = reason
            ar.exec_task.cancel()

    async def _process(self, ar: ActiveRun) -> None:
        run = ar.run
        run_id = str(run["run_id"])
        with bound_run(run_id, str(run["thread_id"])):
            span = tracing.start_run_span(run)
            if span is None:
                await self._process_bound(ar, run_id, None)
                return
            from opentelemetry import trace

            outcome: Outcome | None = None
            try:
                with trace.use_span(span, end_on_exit=False, record_exception=False):
                    outcome = await self._process_bound(ar, run_id, span)
            finally:
                status = outcome.status if outcome is not None else (ar.reason or "lost")
                tracing.end_run_span(span, status, outcome.error if outcome else None)

    async def _process_bound(self, ar: ActiveRun, run_id: str, span: Any) -> Outcome | None:
        """One attempt, with the run bound to the log context (and its span current)."""
        run = ar.run
        heartbeat = asyncio.create_task(self._heartbeat(ar), name=f"berth-hb-{run_id}")
        outcome: Outcome | None = None
        events = RunEventWriter(self.rt.bus, run_id)
        emit = events.emit
        first: list[bool] = []

        async def emit_timed(event: str, data: Any) -> None:
            # The first event of the graph itself (`metadata` goes out before it starts).
            if not first and event != "metadata":
                first.append(True)
                since = _seconds_since(run.get("available_at"))
                if since is not None:
                    self.stats.first_event.observe(since)
            await emit(event, data)

        try:
            ar.exec_task = asyncio.create_task(execute_run(self.rt, run, emit_timed, span))
            try:
                outcome = await ar.exec_task
                if ar.reason is not None:
                    log.info("run %s: the graph finished before the %s took", run_id, ar.reason)
            except asyncio.CancelledError:
                if ar.reason is None:
                    raise
            except Exception as e:  # a bug on our side must still end the run, not loop it
                log.exception("run %s: executor failed", run_id)
                error = {"error": type(e).__name__, "message": str(e)}
                outcome = Outcome("error", {"__error__": error}, None, None, error)
            try:
                # Every event is in Redis and every checkpoint in Postgres before the outcome
                # is recorded (a failed checkpoint write raises: the lease lapses, and the run
                # is retried from what is durable).
                if ar.reason == "lost":
                    # Another attempt owns the thread now: what this one still had queued
                    # must not land on top of it.
                    self.rt.checkpointer.discard(str(run["thread_id"]))
                    log.warning("run %s: worker lost the run; another will take it over", run_id)
                    return outcome
                await events.drain()
                await self.rt.checkpointer.flush(str(run["thread_id"]), consume=True)
                await self._settle(ar, outcome)
            except Exception:
                # The lease will lapse and the reaper hands the run to another attempt.
                log.exception("settling run %s failed", run_id)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            self.active.pop(run_id, None)
            self._slot_freed.set()
        return outcome

    async def _settle(self, ar: ActiveRun, outcome: Outcome | None) -> None:
        rt, run, owner = self.rt, ar.run, self.owner
        run_id, thread_id = str(run["run_id"]), str(run["thread_id"])
        kwargs = run["kwargs"]
        cancelled = ar.reason in ("interrupt", "rollback")
        if outcome is None and ar.reason == "shutdown":
            if await settle.requeue(rt, run, owner):
                log.info("run %s re-queued at shutdown", run_id)
                await rt.bus.wake()
            return
        status: str
        result: Any = None
        # Wake a worker when another run of this thread waits for this one to end (a freed slot
        # of this worker needs no wake-up: the claim loop sees it; new runs wake on creation).
        wake = True
        if outcome is not None and not cancelled:
            thread_status = await settle.finish(
                rt, run, owner, outcome.status, outcome.output, outcome.snapshot, outcome.error
            )
            if thread_status is None:
                log.warning("run %s: lease lost before settling; result dropped", run_id)
                return
            status, result = outcome.status, outcome.output
            wake = thread_status == "busy"
        elif ar.reason == "rollback":
            if not await settle.rollback(rt, run, owner):
                return
            snapshot = await self._snapshot(kwargs["graph_id"], thread_id)
            async with rt.pool.connection() as conn, conn.transaction():
                await settle.set_thread_from_snapshot(conn, thread_id, snapshot, None, False)
            status = "interrupted"
        elif ar.reason == "interrupt":
            snapshot = await self._snapshot(kwargs["graph_id"], thread_id)
            values = snapshot["values"] if snapshot else {}
            if await settle.finish(rt, run, owner, "interrupted", values, snapshot, None) is None:
                return
            status, result = "interrupted", values
        else:
            return
        self.finished[status] += 1
        # The end event and the wake-up (if any) go out in one Redis round trip.
        await settle.publish_end(rt, run_id, status, wake=wake, result=result)
        if kwargs.get("webhook"):
            task = asyncio.create_task(send_webhook(rt, run_id), name=f"berth-webhook-{run_id}")
            rt.background.add(task)
            task.add_done_callback(rt.background.discard)
        if kwargs.get("temporary") and kwargs.get("on_completion", "delete") == "delete":
            await settle.delete_thread_everywhere(rt, thread_id, keep_runs=True)

    async def _snapshot(self, graph_id: str, thread_id: str) -> dict[str, Any] | None:
        try:
            return await thread_snapshot(self.rt, graph_id, thread_id)
        except Exception as e:
            log.warning("reading state of thread %s failed: %r", thread_id, e)
            return None

    async def _heartbeat(self, ar: ActiveRun) -> None:
        settings = self.rt.settings
        run = ar.run
        while True:
            await asyncio.sleep(settings.heartbeat_seconds)
            try:
                async with self.rt.pool.connection() as conn:
                    row = await q.fetchone(
                        conn,
                        "heartbeat",
                        run_id=run["run_id"],
                        owner=self.owner,
                        attempt=run["attempt"],
                        lease=settings.lease_seconds,
                    )
            except (psycopg.Error, OSError) as e:
                self.stats.heartbeat_failures += 1
                log.warning("heartbeat of run %s failed: %r", run["run_id"], e)
                continue
            if row is None:
                if ar.reason is None:
                    self._interrupt(ar, "lost")
                return
            if row["cancel_action"] and ar.reason is None:
                self._interrupt(ar, row["cancel_action"])
            elif (
                ar.reason in ("interrupt", "rollback") and ar.exec_task and not ar.exec_task.done()
            ):
                ar.exec_task.cancel()  # the graph swallowed the first cancel: ask again

    async def _cancel_loop(self) -> None:
        async for run_id, action in self.rt.bus.cancel_signals(self.rt.settings.poll_seconds):
            ar = self.active.get(run_id)
            if ar is not None:
                self._interrupt(ar, "rollback" if action == "rollback" else "interrupt")

    # reaping ---------------------------------------------------------------------------------

    async def _reaper_loop(self) -> None:
        """Re-queue the runs of dead or silent workers: cheap, so it runs often."""
        while True:
            await asyncio.sleep(self.rt.settings.liveness_seconds)
            try:
                await self.reap_once()
            except (psycopg.Error, OSError) as e:
                log.warning("reaper pass failed: %r", e)
            except Exception:
                log.exception("reaper pass failed")

    async def _housekeeping_loop(self) -> None:
        """Stateless run rows past their keep time, thread TTLs, the checkpointer TTL."""
        settings = self.rt.settings
        cp_ttl = self.rt.config.checkpointer_ttl
        sweep_every = cp_ttl.sweep_interval_minutes * 60 if cp_ttl else 0.0
        last_sweep = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(settings.reaper_interval_seconds)
            try:
                async with self.rt.pool.connection() as conn:
                    await q.fetchall(
                        conn, "purge_temporary_runs", keep_seconds=TEMPORARY_RUN_KEEP_SECONDS
                    )
                await self._sweep_thread_ttls()
                if cp_ttl and cp_ttl.default_ttl and loop.time() - last_sweep >= sweep_every:
                    last_sweep = loop.time()
                    await self._sweep_threads(cp_ttl.default_ttl)
            except (psycopg.Error, OSError) as e:
                log.warning("housekeeping pass failed: %r", e)
            except Exception:
                log.exception("housekeeping pass failed")

    async def reap_once(self) -> int:
        rt = self.rt
        async with rt.pool.connection() as conn, conn.transaction():
            rows = await q.fetchall(
                conn,
                "reap_lost",
                max_attempts=rt.settings.bg_job_max_retries,
                lost_locks=self._lost_locks,
            )
            for row in rows:
                if row["status"] != "pending":
                    error = (row["result"] or {}).get("__error__")
                    await q.execute(
                        conn,
                        "set_thread_state_keep_values",
                        thread_id=row["thread_id"],
                        error=error,
                        idle_status="error" if row["status"] == "error" else "idle",
                    )
                    await q.execute(conn, "refresh_thread_status", thread_id=row["thread_id"])
        self.stats.reaped += len(rows)
        requeued = 0
        for row in rows:
            run_id = str(row["run_id"])
            if row["status"] == "pending":
                requeued += 1
                log.warning("run %s: worker lost on attempt %s; re-queued", run_id, row["attempt"])
            else:
                log.warning("run %s: worker lost; final status %s", run_id, row["status"])
                error = (row["result"] or {}).get("__error__")
                if error:
                    await rt.bus.append_event(run_id, "error", dumps_bytes(error))
                await settle.publish_end(rt, run_id, row["status"])
                task = asyncio.create_task(send_webhook(rt, run_id))
                rt.background.add(task)
                task.add_done_callback(rt.background.discard)
        if requeued:
            await rt.bus.wake(requeued)
        return len(rows)

    async def _sweep_thread_ttls(self) -> None:
        """Per-thread `ttl`: `delete` drops the thread, `keep_latest` prunes its history."""
        async with self.rt.pool.connection() as conn:
            rows = await q.fetchall(conn, "ttl_expired_threads")
        for row in rows:
            tid = str(row["thread_id"])
            if row["strategy"] == "keep_latest":
                await self.rt.checkpointer.aprune([tid], strategy="keep_latest")
                async with self.rt.pool.connection() as conn:
                    await q.execute(conn, "touch_thread", thread_id=row["thread_id"])
            else:
                await settle.delete_thread_everywhere(self.rt, tid)
            log.info("thread %s: ttl expired (%s)", tid, row["strategy"] or "delete")

    async def _sweep_threads(self, minutes: float) -> None:
        async with self.rt.pool.connection() as conn:
            rows = await q.fetchall(conn, "expired_threads", minutes=minutes)
        for row in rows:
            await settle.delete_thread_everywhere(self.rt, str(row["thread_id"]))
        if rows:
            log.info("checkpointer ttl: deleted %s threads", len(rows))


def _seconds_since(when: Any) -> float | None:
    """Seconds from a timestamptz column to now (None: not a timestamp)."""
    if not isinstance(when, dt.datetime):
        return None
    return (dt.datetime.now(dt.UTC) - when).total_seconds()
