"""Count what one run costs in Postgres statements and Redis commands.

Starts Berth as the benchmark does (api + worker on throwaway Postgres and Redis, the
bench/graphs/echo.py graph), turns on Postgres' `log_statement = all`, runs `--clients` clients
x `--runs` runs per phase (streaming, then `wait`), and prints per run: the statements by
their first comment line (every named query starts with one; LangGraph's checkpoint read has
none) and the Redis commands from `INFO commandstats`, then from Postgres' cumulative
statistics the transactions committed (`pg_stat_database.xact_commit`, read-only ones
included), the WAL flushes to disk (`pg_stat_wal.wal_sync`: what a durable commit waits for;
0 with fsync off) and the WAL bytes per run. Postgres is durable as shipped unless
`--unsafe-fast-db`. Not a benchmark (no peer, no timing): the per-run counts behind
docs/benchmarks.md.

    .venv/bin/python hack/count_round_trips.py [--clients 10] [--runs 20] [--unsafe-fast-db]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from langgraph_sdk import get_client  # noqa: E402

from bench.runtime_throughput import berth_server, db_mode, label_unsafe_output  # noqa: E402

LOGGED = re.compile(rb"(?:statement|execute [^:]*): (.*)")


def process_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().split("=", 1) for e in raw if b"=" in e)


def statement_label(text: bytes) -> str:
    """A logged statement's first line: a named query's comment, or its first words."""
    first = text.strip().split(b"\n", 1)[0][:60]
    return first.decode(errors="replace") or "(LangGraph checkpoint read)"


def redis_calls(uri: str) -> dict[str, int]:
    info: dict[str, Any] = redis.Redis.from_url(uri).info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}


# Backends report their statistics when idle, at most every second, and an idle backend
# waits up to 10 s to do so: wait that long before reading them.
STATS_SETTLE_SECONDS = 11.0


def postgres_counters(database_uri: str) -> dict[str, float]:
    with psycopg.connect(database_uri, autocommit=True) as conn:
        commits = conn.execute(
            "SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        wal = conn.execute("SELECT wal_sync, wal_write FROM pg_stat_wal").fetchone()
        lsn = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    assert commits is not None and wal is not None and lsn is not None
    return {
        "commits": float(commits[0]),
        "WAL flushes (wal_sync)": float(wal[0]),
        "WAL writes (wal_write)": float(wal[1]),
        "WAL bytes": float(lsn[0]),
    }


def logged_statements(log_path: str, offset: int) -> collections.Counter[str]:
    statements: collections.Counter[str] = collections.Counter()
    with open(log_path, "rb") as log:
        log.seek(offset)
        for line in log:
            match = LOGGED.search(line)
            if match:
                statements[statement_label(match.group(1))] += 1
    return statements


async def run_back_to_back(client: Any, thread_id: str, phase: str, runs: int) -> None:
    for _ in range(runs):
        if phase == "stream":
            async for _part in client.runs.stream(
                thread_id, "echo", input={"text": "x"}, stream_mode="values"
            ):
                pass
        else:
            await client.runs.wait(thread_id, "echo", input={"text": "x"})


async def count(
    url: str, log_path: str, redis_uri: str, database_uri: str, clients: int, runs: int
) -> None:
    client = get_client(url=url)
    threads = [(await client.threads.create())["thread_id"] for _ in range(clients)]
    for thread_id in threads:  # warm-up: assistants cached, statements prepared
        await client.runs.wait(thread_id, "echo", input={"text": "warm"})
    for phase in ("stream", "wait"):
        await asyncio.sleep(STATS_SETTLE_SECONDS)
        offset, before = Path(log_path).stat().st_size, redis_calls(redis_uri)  # noqa: ASYNC240
        pg_before = postgres_counters(database_uri)
        started = time.monotonic()
        await asyncio.gather(*(run_back_to_back(client, t, phase, runs) for t in threads))
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.5)
        total = clients * runs
        statements = logged_statements(log_path, offset)
        after = redis_calls(redis_uri)
        await asyncio.sleep(STATS_SETTLE_SECONDS)
        pg_after = postgres_counters(database_uri)
        commands = {k: (v - before.get(k, 0)) / total for k, v in after.items()}
        commands = {k: v for k, v in commands.items() if v > 0}
        print(f"{phase}: {sum(statements.values()) / total:.2f} Postgres statements per run")
        for label, n in statements.most_common():
            print(f"  {n / total:6.2f}  {label}")
        print(
            f"{phase}: Postgres per run ({elapsed:.1f} s of runs; these counters also hold "
            f"the {2 * STATS_SETTLE_SECONDS:.0f} s around them and their own 6 queries)"
        )
        for name, value in pg_after.items():
            print(f"  {(value - pg_before[name]) / total:8.2f}  {name}")
        print(f"{phase}: {sum(commands.values()):.2f} Redis commands per run")
        for name, calls in sorted(commands.items()):
            print(f"  {calls:6.2f}  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20, help="runs per client and phase")
    parser.add_argument("--unsafe-fast-db", action="store_true", help="fsync etc. off")
    args = parser.parse_args()
    for name, value in (("--clients", args.clients), ("--runs", args.runs)):
        if not 1 <= value <= 1000:
            parser.error(f"{name} must be between 1 and 1000, got {value}")
    durable = not args.unsafe_fast_db
    if not durable:
        label_unsafe_output()
    print(f"postgres: {db_mode(durable)}", flush=True)
    with berth_server(True, durable) as target:
        env = process_env(target.processes["berth api"])
        with psycopg.connect(env["DATABASE_URI"], autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            conn.execute("SELECT pg_reload_conf()")
        log_path = os.readlink(f"/proc/{target.processes['postgres']}/fd/2")
        asyncio.run(
            count(
                target.url, log_path, env["REDIS_URI"], env["DATABASE_URI"], args.clients, args.runs
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
