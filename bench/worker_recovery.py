"""A killed worker: how soon its runs run again, and how soon a new worker is ready.

With the shipped defaults (no timing variable set), on a throwaway Postgres (durable as
shipped; `--unsafe-fast-db` turns fsync off and labels every printed line) and Redis:

- *start*: `berth-runtime worker` from exec to its first `/ok` 200 (migrations already
  applied), `--starts` times, as wall time and as the process's CPU time until then (steadier
  on a shared machine); and the same for `berth-runtime api`;
- *pickup*: an `api` process and two workers; runs of the `steps` graph
  (tests/integration/graphs) on several threads; the worker running most of them is
  SIGKILLed in the middle of a step, and each of its runs is timed from the kill until its
  row is `running` again with the next attempt (Postgres polled every 10 ms); `--kills`
  rounds, a new worker started after each.

`--baseline REF` measures the runtime of an older commit the same way, side by side (its
source exported with `git archive`, put first on PYTHONPATH), e.g. the commit before dead
workers were found from their Postgres session:

    .venv/bin/python bench/worker_recovery.py
    .venv/bin/python bench/worker_recovery.py --baseline ed59005 --kills 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from io import BytesIO
from pathlib import Path

import httpx
import psycopg
from langgraph_sdk import get_client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.runtime_throughput import UNSAFE_LABEL, db_mode, label_unsafe_output  # noqa: E402
from tests.support.servers import (  # noqa: E402
    create_database,
    free_port,
    postgres_server,
    redis_server,
)

BIN = ROOT / ".venv" / "bin" / "berth-runtime"
CONFIG = ROOT / "tests" / "integration" / "graphs" / "langgraph.json"


def start(role: str, env: dict[str, str], logdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (logdir / f"{role}-{port}.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN), role, "--config", str(CONFIG), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(logdir),
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_ok(proc: subprocess.Popen[bytes], url: str, within: float = 120) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise TimeoutError(url)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (steadier than wall time on a busy box)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def startup_times(
    role: str, env: dict[str, str], logdir: Path, n: int
) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(n):
        proc, url = start(role, env, logdir)
        wall.append(wait_ok(proc, url))
        cpu.append(cpu_seconds(proc.pid))
        stop(proc)
    return wall, cpu


def kill_busiest(db: str, ids: list[str]) -> tuple[int, list[float]]:
    """SIGKILL the worker running most of the runs, mid-step; time each run's next attempt."""
    owners: dict[int, list[str]] = {}
    picked: list[float] = []
    with psycopg.connect(db, autocommit=True) as conn:
        while sum(map(len, owners.values())) < len(ids):
            owners = {}
            for rid, owner in conn.execute(
                "SELECT run_id::text, owner FROM run"
                " WHERE run_id = ANY(%s::uuid[]) AND status = 'running'",
                (ids,),
            ).fetchall():
                owners.setdefault(int(owner.split(":")[1]), []).append(rid)
            time.sleep(0.05)
        time.sleep(0.5)  # in the middle of s1
        victim = max(owners, key=lambda p: len(owners[p]))
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        pending = set(owners[victim])
        while pending and time.monotonic() - killed < 120:
            for rid, status, attempt in conn.execute(
                "SELECT run_id::text, status, attempt FROM run WHERE run_id = ANY(%s::uuid[])",
                (list(pending),),
            ).fetchall():
                if status == "running" and attempt >= 2:
                    picked.append(time.monotonic() - killed)
                    pending.discard(rid)
            time.sleep(0.01)
    return victim, picked


async def pickup_times(env: dict[str, str], logdir: Path, db: str, kills: int) -> list[float]:
    api, api_url = start("api", env, logdir)
    wait_ok(api, api_url)
    workers = [start("worker", env, logdir) for _ in range(2)]
    for proc, url in workers:
        wait_ok(proc, url)
    client = get_client(url=api_url)
    fx = logdir / f"fx-{uuid.uuid4().hex[:6]}.log"
    out: list[float] = []
    try:
        for _ in range(kills):
            threads = [await client.threads.create() for _ in range(6)]
            runs = [
                await client.runs.create(
                    t["thread_id"],
                    "steps",
                    input={"done": []},
                    config={"configurable": {"side_effects": str(fx), "sleep": 1.5}},
                )
                for t in threads
            ]
            ids = [r["run_id"] for r in runs]
            victim_pid, picked = await asyncio.to_thread(kill_busiest, db, ids)
            out.extend(picked)
            victim = next(w for w in workers if w[0].pid == victim_pid)
            victim[0].wait()
            workers.remove(victim)
            workers.append(start("worker", env, logdir))
            wait_ok(*workers[-1])
            for t, r in zip(threads, runs, strict=True):
                await client.runs.join(t["thread_id"], r["run_id"])
    finally:
        await client.aclose()
        for proc, _ in [*workers, (api, api_url)]:
            stop(proc)
    return out


def export(ref: str, into: Path) -> Path:
    data = subprocess.run(
        ["git", "archive", ref, "runtime_image/berth_runtime"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "runtime_image"


def fmt(values: list[float]) -> str:
    if not values:
        return "n=0"
    return (
        f"n={len(values)} median={statistics.median(values):.2f}s "
        f"min={min(values):.2f}s max={max(values):.2f}s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="a git ref to measure side by side")
    ap.add_argument(
        "--unsafe-fast-db",
        action="store_true",
        help="Postgres with fsync, synchronous_commit and full_page_writes off (not durable); "
        "every printed line is labelled " + UNSAFE_LABEL.strip(),
    )
    a = ap.parse_args()
    durable = not a.unsafe_fast_db
    if not durable:
        label_unsafe_output()
    print(f"postgres: {db_mode(durable)}", flush=True)
    timing = ("BERTH_LEASE_SECONDS", "BERTH_HEARTBEAT_SECONDS", "BERTH_REAPER_INTERVAL_SECONDS")
    base_env = {k: v for k, v in os.environ.items() if k not in timing and k != "PYTHONPATH"}
    with (
        postgres_server(durable=durable) as pg,
        redis_server() as redis,
        tempfile.TemporaryDirectory() as tmp,
    ):
        variants: list[tuple[str, dict[str, str]]] = [("current", {})]
        if a.baseline:
            src = export(a.baseline, Path(tmp) / "baseline")
            variants.append((a.baseline, {"PYTHONPATH": str(src)}))
        for name, extra in variants:
            db = create_database(pg.uri, f"b_{uuid.uuid4().hex[:8]}")
            env = {**base_env, **extra, "DATABASE_URI": db, "REDIS_URI": redis.uri}
            env["LOG_LEVEL"] = "WARNING"
            logdir = Path(tmp) / name
            logdir.mkdir()
            first, url = start("api", env, logdir)  # migrations
            wait_ok(first, url)
            stop(first)
            for role in ("worker", "api"):
                wall, cpu = startup_times(role, env, logdir, a.starts)
                print(f"{name}: {role} start to /ok: wall {fmt(wall)}; CPU {fmt(cpu)}", flush=True)
            picked = asyncio.run(pickup_times(env, logdir, db, a.kills))
            print(f"{name}: pickup after SIGKILL {fmt(picked)}", flush=True)


if __name__ == "__main__":
    main()
