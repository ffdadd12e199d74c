"""The chaos soak: clients drive runs while a fault loop kills everything underneath.

    .venv/bin/python -m tests.soak --seconds 300 --clients 16 --workers 4     # make soak
    .venv/bin/python -m tests.soak --seconds 60 --break-resume                # must fail

- Postgres and Redis are started from local binaries (tests/support/servers.py); the runtime
  runs as one `berth-runtime api` process and `--workers` `berth-runtime worker` processes
  with the shipped defaults (no timing variable set), serving tests/soak/graph.
- `--clients` concurrent `langgraph-sdk` clients each loop: a stateful run on the client's own
  thread or a stateless run (half each), created with a unique key in its metadata, then
  joined (`runs.join`, or a stream join `runs.join_stream` that reconnects with
  `Last-Event-ID`). A create cut by a kill is resolved from Postgres by its key.
- The fault loop SIGKILLs a random worker every `--kill-worker-every` seconds (about) and
  starts a new one, SIGKILLs the API process every `--kill-api-every` seconds and starts it
  again on the same port, restarts Redis once (35 % into the soak), and Postgres twice: a
  fast shutdown (SIGINT, 55 %) and an immediate one (SIGQUIT, crash recovery, 80 %).
- Then faults stop, every run is awaited, and tests/soak/checker.py checks all of them.

It prints one line (and returns the Report): runs, ok, lost, failed, wrong final state, steps
re-executed, steps re-executed past a checkpoint; then the fault counts and how long the
killed workers' runs took to be picked up again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIStatusError

from tests.soak import checker
from tests.support.servers import (
    Server,
    create_database,
    free_port,
    postgres_server,
    redis_server,
    wait_for_port,
)

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin" / "berth-runtime"
GRAPH_CONFIG = Path(__file__).resolve().parent / "graph" / "langgraph.json"
# Variables that would override a shipped default: the soak runs without them.
TIMING_VARS = (
    "BERTH_LEASE_SECONDS",
    "BERTH_HEARTBEAT_SECONDS",
    "BERTH_REAPER_INTERVAL_SECONDS",
    "BERTH_LIVENESS_SECONDS",
    "BERTH_POLL_SECONDS",
    "BG_JOB_MAX_RETRIES",
    "N_JOBS_PER_WORKER",
)


@dataclass
class Options:
    seconds: float = 300.0
    clients: int = 16
    workers: int = 4
    kill_worker_every: float = 4.0
    kill_api_every: float = 20.0
    restart_redis: bool = True
    restart_postgres: bool = True
    break_resume: bool = False
    drain_seconds: float = 180.0
    seed: int | None = None
    logs: Path | None = None


@dataclass
class Faults:
    worker_kills: int = 0
    api_kills: int = 0
    redis_restarts: int = 0
    postgres_restarts: list[str] = field(default_factory=list)
    # Seconds from a worker's SIGKILL until each of its runs was taken from it (re-queued),
    # and until it was running again on another worker (that also waits for a free slot).
    requeues: list[float] = field(default_factory=list)
    # ...split by whether another runtime process answered /ok right after the kill (with
    # frequent kills, all of them may be starting).
    requeues_live: list[float] = field(default_factory=list)
    requeues_nobody_up: list[float] = field(default_factory=list)
    pickups: list[float] = field(default_factory=list)
    create_retries: int = 0
    join_retries: int = 0


def say(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Proc:
    """One berth-runtime process that can be killed and started again on the same port."""

    def __init__(self, role: str, env: dict[str, str], logdir: Path, port: int) -> None:
        self.role, self.env, self.logdir, self.port = role, env, logdir, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = self.logdir / f"{self.role}-{self.port}-{self.starts}.log"
        argv = [str(BIN), self.role, "--config", str(GRAPH_CONFIG), "--host", "127.0.0.1"]
        self.proc = subprocess.Popen(
            [*argv, "--port", str(self.port)],
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=str(self.logdir),
        )

    def kill(self) -> int:
        assert self.proc is not None
        pid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        return pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    async def answers(self) -> bool:
        """Up right now (its reaper runs)?"""
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{self.url}/ok", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    async def ready(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                try:
                    if (await http.get(f"{self.url}/ok", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.role} on {self.port} not ready")


def restart_server(server: Server, sig: signal.Signals, pidfile: Path | None) -> None:
    """Stop a Postgres or Redis server with `sig` and start it again with the same command."""
    if pidfile is not None:
        # Postgres runs under runuser when we are root: signal the postmaster itself.
        os.kill(int(pidfile.read_text().split()[0]), sig)
    else:
        server.proc.send_signal(sig)
    server.proc.wait(60)
    args = server.proc.args
    stderr = (server.workdir / "restart.log").open("ab")
    server.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)
    wait_for_port(server.port, 60, server.proc)


@contextlib.contextmanager
def services() -> Iterator[tuple[Server, Server]]:
    with postgres_server() as pg, redis_server() as redis:
        yield pg, redis


class Soak:
    def __init__(self, opts: Options, pg: Server, redis: Server, workdir: Path) -> None:
        self.opts, self.pg, self.redis, self.workdir = opts, pg, redis, workdir
        self.db = create_database(pg.uri, f"soak_{uuid.uuid4().hex[:8]}")
        env = {k: v for k, v in os.environ.items() if k not in TIMING_VARS}
        env.update(
            DATABASE_URI=self.db,
            REDIS_URI=redis.uri,
            SOAK_LOG_URI=self.db,
            LOG_LEVEL="WARNING",
            BERTH_DB_WAIT_SECONDS="120",
        )
        worker_env = dict(env)
        if opts.break_resume:
            worker_env["SOAK_BREAK_RESUME"] = "1"
        self.api = Proc("api", env, workdir, free_port())
        self.workers = [
            Proc("worker", worker_env, workdir, free_port()) for _ in range(opts.workers)
        ]
        self.faults = Faults()
        self.intended: list[checker.Intended] = []
        self.thread_expected: dict[str, list[str]] = {}
        self.stop_faults = asyncio.Event()
        self.rng = random.Random(opts.seed)

    # processes ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.api.start()
        # Migrations done; the first start imports everything cold (slow on a loaded machine).
        await self.api.ready(within=180)
        checker.install(self.db)
        for w in self.workers:
            w.start()
        for w in self.workers:
            await w.ready()

    def stop(self) -> None:
        for p in [self.api, *self.workers]:
            p.stop()

    async def fault_loop(self, deadline: float) -> None:
        opts, loop = self.opts, asyncio.get_running_loop()
        start = loop.time()
        span = deadline - start
        redis_at = start + 0.35 * span if opts.restart_redis else None
        pg_plan = (
            [(start + 0.55 * span, "fast"), (start + 0.8 * span, "immediate")]
            if opts.restart_postgres
            else []
        )
        next_worker = start + opts.kill_worker_every * self.rng.uniform(0.5, 1.5)
        next_api = start + opts.kill_api_every * self.rng.uniform(0.75, 1.25)
        pickups: list[asyncio.Task[None]] = []
        while loop.time() < deadline and not self.stop_faults.is_set():
            now = loop.time()
            if now >= next_worker:
                pickups.append(asyncio.create_task(self.kill_worker()))
                next_worker = now + opts.kill_worker_every * self.rng.uniform(0.5, 1.5)
            if now >= next_api:
                pid = self.api.kill()
                self.faults.api_kills += 1
                say(f"SIGKILL api {pid}")
                self.api.start()
                next_api = now + opts.kill_api_every * self.rng.uniform(0.75, 1.25)
            if redis_at is not None and now >= redis_at:
                redis_at = None
                say("restarting Redis")
                await asyncio.to_thread(restart_server, self.redis, signal.SIGTERM, None)
                self.faults.redis_restarts += 1
            if pg_plan and now >= pg_plan[0][0]:
                _, mode = pg_plan.pop(0)
                sig = signal.SIGINT if mode == "fast" else signal.SIGQUIT
                say(f"restarting Postgres ({mode} shutdown)")
                pidfile = self.pg.workdir / "data" / "postmaster.pid"
                await asyncio.to_thread(restart_server, self.pg, sig, pidfile)
                self.faults.postgres_restarts.append(mode)
            await asyncio.sleep(0.1)
        await asyncio.gather(*pickups, return_exceptions=True)

    async def kill_worker(self) -> None:
        """SIGKILL a random worker that is running runs (else any live one), start another."""
        alive = {
            w.proc.pid: w for w in self.workers if w.proc is not None and w.proc.poll() is None
        }
        if not alive:
            return
        owned_by: dict[int, list[tuple[str, int]]] = {}
        with contextlib.suppress(psycopg.Error, OSError):
            async with await psycopg.AsyncConnection.connect(
                self.db, autocommit=True, connect_timeout=2
            ) as conn:
                cur = await conn.execute(
                    "SELECT split_part(owner, ':', 2), run_id::text, attempt FROM run"
                    " WHERE status = 'running'"
                )
                for pid_text, rid, attempt in await cur.fetchall():
                    if pid_text.isdigit() and int(pid_text) in alive:
                        owned_by.setdefault(int(pid_text), []).append((rid, attempt))
        pid = self.rng.choice(sorted(owned_by or alive))
        victim, owned = alive[pid], owned_by.get(pid, [])
        victim.kill()
        killed_at = time.monotonic()
        self.faults.worker_kills += 1
        victim.start()
        # Is any other process up to re-queue its runs? (All of them may be starting.)
        others = [p for p in [self.api, *self.workers] if p is not victim]
        up = await asyncio.gather(*(p.answers() for p in others))
        reaped_by_live = any(up)
        # How long until each of its runs runs again elsewhere (or is settled).
        pending = dict(owned)
        unowned = set(pending)  # not yet taken from the dead worker
        mine: list[float] = []
        explained = False
        while pending and time.monotonic() - killed_at < 60:
            await asyncio.sleep(0.05)
            if unowned and reaped_by_live and not explained and time.monotonic() - killed_at > 2:
                explained = True
                await self.explain_stuck(sorted(unowned))
            with contextlib.suppress(psycopg.Error, OSError):
                async with await psycopg.AsyncConnection.connect(
                    self.db, autocommit=True, connect_timeout=2
                ) as conn:
                    cur = await conn.execute(
                        "SELECT run_id::text, status, attempt FROM run WHERE run_id = ANY(%s)",
                        (list(pending),),
                    )
                    for rid, status, attempt in await cur.fetchall():
                        if rid in unowned and (status != "running" or attempt > pending[rid]):
                            unowned.discard(rid)
                            took = time.monotonic() - killed_at
                            self.faults.requeues.append(took)
                            if reaped_by_live:
                                self.faults.requeues_live.append(took)
                            else:
                                self.faults.requeues_nobody_up.append(took)
                        settled = status not in ("pending", "running")
                        if settled or (attempt > pending[rid] and status == "running"):
                            mine.append(time.monotonic() - killed_at)
                            del pending[rid]
        self.faults.pickups.extend(mine)
        say(
            f"SIGKILL worker {pid}: {len(owned)} runs, again after {[round(m, 2) for m in mine]} s"
            + ("" if reaped_by_live else " (no other runtime process was up)")
        )

    async def explain_stuck(self, run_ids: list[str]) -> None:
        """A dead worker's runs not re-queued after 2 s: say what still holds them."""
        with contextlib.suppress(psycopg.Error, OSError):
            async with await psycopg.AsyncConnection.connect(
                self.db, autocommit=True, connect_timeout=2
            ) as conn:
                cur = await conn.execute(
                    "SELECT r.run_id::text, r.status, r.owner, r.owner_lock,"
                    " r.lease_expires_at - clock_timestamp() AS lease_left,"
                    " (SELECT count(*) FROM pg_locks l WHERE l.locktype = 'advisory'"
                    "   AND l.classid::bigint = (r.owner_lock >> 32) & 4294967295"
                    "   AND l.objid::bigint = r.owner_lock & 4294967295) AS locks,"
                    " (SELECT json_agg(json_build_object('pid', a.pid, 'state', a.state,"
                    "   'wait', a.wait_event_type || ':' || a.wait_event,"
                    "   'query', left(a.query, 160), 'since', clock_timestamp() - a.state_change))"
                    "  FROM pg_stat_activity a"
                    "  WHERE a.application_name = 'berth ' || substring(r.owner FROM '[^:]*$'))"
                    "   AS sessions"
                    " FROM run r WHERE r.run_id = ANY(%s::uuid[])",
                    (run_ids,),
                )
                for row in (await cur.fetchall())[:2]:
                    say(f"not re-queued after 2 s: {row}")

    # clients --------------------------------------------------------------------------------

    async def find_run(self, key: str) -> dict[str, Any] | None:
        """Was the run with this key created? (The API may have died before answering.)"""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.db, autocommit=True, connect_timeout=3
                ) as conn:
                    cur = await conn.execute(
                        "SELECT run_id::text, thread_id::text FROM run"
                        " WHERE metadata ->> 'soak_key' = %s",
                        (key,),
                    )
                    row = await cur.fetchone()
                    return {"run_id": row[0], "thread_id": row[1]} if row else None
            except psycopg.OperationalError:
                await asyncio.sleep(0.3)  # Postgres restarting

    async def create(
        self, client: LangGraphClient, thread_id: str | None, key: str, deadline: float
    ) -> dict[str, Any] | None:
        while time.monotonic() < deadline:
            try:
                return dict(
                    await client.runs.create(
                        thread_id,  # type: ignore[arg-type]
                        "soak",
                        input={"key": key, "trail": []},
                        metadata={"soak_key": key},
                    )
                )
            except (httpx.HTTPError, APIStatusError) as e:
                if isinstance(e, APIStatusError) and e.status_code < 500:
                    raise
                self.faults.create_retries += 1
                found = await self.find_run(key)
                if found is not None:
                    return found
                await asyncio.sleep(0.3)
        return None

    async def join(
        self, client: LangGraphClient, run: dict[str, Any], stream: bool, it: checker.Intended
    ) -> list[str] | None:
        tid, rid = run["thread_id"], run["run_id"]
        give_up = time.monotonic() + self.opts.drain_seconds + self.opts.seconds
        while time.monotonic() < give_up:
            try:
                seen: list[list[str]] = []
                if stream:
                    async for part in client.runs.join_stream(tid, rid, stream_mode="values"):
                        if part.event == "values" and isinstance(part.data, dict):
                            seen.append(list(part.data.get("trail") or []))
                # A stream cut by a kill may miss events (the SDK reconnects without replay
                # when it saw no event id), so the answer is what `join` returns; what was
                # streamed must be on the way to it.
                final = await client.runs.join(tid, rid)
                if not isinstance(final, dict) or "trail" not in final:
                    # A failed run answers its error; anything else is a join that answered
                    # before the run was over. Either is counted by the checker, not raised.
                    it.join_answer = repr(final)[:300]
                    say(f"run {rid}: join answered {it.join_answer}")
                    return None
                trail = list(final["trail"])
                if trail is not None and any(trail[: len(v)] != v for v in seen):
                    it.stream_mismatch = True
                    say(f"run {rid}: streamed values {seen} are not on the way to {trail}")
                return trail
            except (httpx.HTTPError, APIStatusError):
                self.faults.join_retries += 1
                await asyncio.sleep(0.5)
        return None

    async def client_loop(self, i: int, deadline: float) -> None:
        client = get_client(url=self.api.url, timeout=(30.0, None, 30.0, 30.0))
        thread_id = str(uuid.uuid4())
        created = False
        expected: list[str] = []
        try:
            while time.monotonic() < deadline:
                stateful = self.rng.random() < 0.5
                if stateful and not created:
                    try:
                        await client.threads.create(thread_id=thread_id, if_exists="do_nothing")
                        created = True
                        self.thread_expected[thread_id] = expected
                    except (httpx.HTTPError, APIStatusError):
                        await asyncio.sleep(0.5)
                        continue
                key = uuid.uuid4().hex
                run = await self.create(client, thread_id if stateful else None, key, deadline)
                if run is None:
                    continue
                it = checker.Intended(key, run["run_id"], run["thread_id"], stateful)
                self.intended.append(it)
                if stateful:
                    expected.extend(checker.expected_trail(key))
                stream = self.rng.random() < 0.5
                it.observed = await self.join(client, run, stream, it)
        finally:
            await client.aclose()

    # the end ----------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait (bounded) until no run of the soak is pending or running."""
        give_up = time.monotonic() + self.opts.drain_seconds
        while time.monotonic() < give_up:
            try:
                async with await psycopg.AsyncConnection.connect(self.db, autocommit=True) as c:
                    cur = await c.execute(
                        "SELECT count(*) FROM run WHERE status IN ('pending', 'running')"
                    )
                    row = await cur.fetchone()
                    if row is not None and row[0] == 0:
                        return
            except psycopg.OperationalError:
                pass
            await asyncio.sleep(0.5)

    async def thread_values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        client = get_client(url=self.api.url)
        try:
            for tid in self.thread_expected:
                for _ in range(20):
                    try:
                        out[tid] = (await client.threads.get_state(tid))["values"]
                        break
                    except (httpx.HTTPError, APIStatusError):
                        await asyncio.sleep(0.5)
        finally:
            await client.aclose()
        return out

    async def run(self) -> checker.Report:
        await self.start()
        say(
            f"{self.opts.clients} clients, {self.opts.workers} workers, {self.opts.seconds:.0f} s"
            + (" (broken: no checkpoint resume)" if self.opts.break_resume else "")
        )
        deadline = time.monotonic() + self.opts.seconds
        loop_deadline = asyncio.get_running_loop().time() + self.opts.seconds
        clients = [
            asyncio.create_task(self.client_loop(i, deadline)) for i in range(self.opts.clients)
        ]
        await self.fault_loop(loop_deadline)
        # Faults are over: everything must come back and every run finish.
        for p in [self.api, *self.workers]:
            if p.proc is None or p.proc.poll() is not None:
                p.start()
        await self.api.ready(120)
        await asyncio.gather(*clients)
        await self.drain()
        values = await self.thread_values()
        return checker.check(self.db, self.intended, self.thread_expected, values)

    def summary(self, rep: checker.Report) -> str:
        f = self.faults

        def dist(name: str, values: list[float]) -> str:
            if not values:
                return f"{name}: n=0"
            v = sorted(values)
            return f"{name}: n={len(v)} p50={statistics.median(v):.2f}s max={v[-1]:.2f}s"

        pick = (
            dist("re-queued after worker kill", f.requeues)
            + " ("
            + dist("another process up", f.requeues_live)
            + ", "
            + dist("none up", f.requeues_nobody_up)
            + "); "
            + dist("running again", f.pickups)
        )
        return (
            f"kills: worker={f.worker_kills} api={f.api_kills} redis_restarts={f.redis_restarts}"
            f" postgres_restarts={'+'.join(f.postgres_restarts) or 0};"
            f" {pick}; create retries={f.create_retries} join retries={f.join_retries}"
        )


async def soak(opts: Options) -> tuple[checker.Report, str]:
    with services() as (pg, redis), tempfile.TemporaryDirectory(prefix="berth-soak-") as tmp_:
        tmp = str(opts.logs) if opts.logs else tmp_
        s = Soak(opts, pg, redis, Path(tmp))
        try:
            rep = await s.run()
        finally:
            s.stop()
        if not rep.clean:
            for line in rep.details[:20]:
                say(line)
            for log in sorted(os.listdir(tmp)):
                if not log.endswith(".log"):
                    continue
                text = (Path(tmp) / log).read_text(errors="replace")
                if "Traceback" in text:
                    say(f"{log}: ...{text[-1500:]}")
                    break
        return rep, s.summary(rep)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--kill-worker-every", type=float, default=4.0)
    ap.add_argument("--kill-api-every", type=float, default=20.0)
    ap.add_argument("--no-redis-restart", action="store_true")
    ap.add_argument("--no-postgres-restart", action="store_true")
    ap.add_argument("--break-resume", action="store_true", help="the broken variant")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--logs", type=Path, default=None, help="keep the processes' logs here")
    a = ap.parse_args(argv)
    opts = Options(
        seconds=a.seconds,
        clients=a.clients,
        workers=a.workers,
        kill_worker_every=a.kill_worker_every,
        kill_api_every=a.kill_api_every,
        restart_redis=not a.no_redis_restart,
        restart_postgres=not a.no_postgres_restart,
        break_resume=a.break_resume,
        seed=a.seed,
        logs=a.logs,
    )
    rep, summary = asyncio.run(soak(opts))
    print(f"soak: {rep.line()}", flush=True)
    say(summary)
    return 0 if rep.clean and rep.runs > 0 else 1
