"""Count what one run costs in Postgres statements and Redis commands.

Starts Berth as the benchmark does (api + worker on throwaway Postgres and Redis, the
bench/graphs/echo.py graph), turns on Postgres' `log_statement = all`, runs `--clients` clients
x `--runs` runs per phase (streaming, then `wait`), and prints per run: the statements by
their first comment line (every named query starts with one; LangGraph's checkpoint read has
none) and the Redis commands from `INFO commandstats`. Not a benchmark (no peer, no timing):
the per-run counts behind docs/benchmarks.md.

    .venv/bin/python hack/count_round_trips.py [--clients 10] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from langgraph_sdk import get_client  # noqa: E402

from bench.runtime_throughput import berth_server  # noqa: E402

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


async def count(url: str, log_path: str, redis_uri: str, clients: int, runs: int) -> None:
    client = get_client(url=url)
    threads = [(await client.threads.create())["thread_id"] for _ in range(clients)]
    for thread_id in threads:  # warm-up: assistants cached, statements prepared
        await client.runs.wait(thread_id, "echo", input={"text": "warm"})
    for phase in ("stream", "wait"):
        await asyncio.sleep(1)
        offset, before = Path(log_path).stat().st_size, redis_calls(redis_uri)  # noqa: ASYNC240
        await asyncio.gather(*(run_back_to_back(client, t, phase, runs) for t in threads))
        await asyncio.sleep(0.5)
        total = clients * runs
        statements = logged_statements(log_path, offset)
        after = redis_calls(redis_uri)
        commands = {k: (v - before.get(k, 0)) / total for k, v in after.items()}
        commands = {k: v for k, v in commands.items() if v > 0}
        print(f"{phase}: {sum(statements.values()) / total:.2f} Postgres statements per run")
        for label, n in statements.most_common():
            print(f"  {n / total:6.2f}  {label}")
        print(f"{phase}: {sum(commands.values()):.2f} Redis commands per run")
        for name, n in sorted(commands.items()):
            print(f"  {n:6.2f}  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20, help="runs per client and phase")
    args = parser.parse_args()
    for name, value in (("--clients", args.clients), ("--runs", args.runs)):
        if not 1 <= value <= 1000:
            parser.error(f"{name} must be between 1 and 1000, got {value}")
    with berth_server(True) as target:
        env = process_env(target.processes["berth api"])
        with psycopg.connect(env["DATABASE_URI"], autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            conn.execute("SELECT pg_reload_conf()")
        log_path = os.readlink(f"/proc/{target.processes['postgres']}/fd/2")
        asyncio.run(count(target.url, log_path, env["REDIS_URI"], args.clients, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
