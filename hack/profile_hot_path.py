"""Where Berth's CPU goes per run: py-spy on the api and worker processes under load.

Starts Berth as bench/runtime_throughput.py does (api + worker, durable Postgres unless
`--unsafe-fast-db`, the bench/graphs/echo.py graph), drives `--clients` langgraph-sdk clients
running streaming runs back to back, and samples both processes with `py-spy record --format
raw` (collapsed stacks; .venv/bin/py-spy, pinned in the dev group) for `--seconds`. Prints per
process the functions with the most samples on top of the stack (self) and the frames present
in the most samples (inclusive), as a share of the samples taken while the process ran Python
(idle threads excluded), and the runs completed meanwhile. Not a benchmark: the profile behind
docs/benchmarks.md, "Where the time goes (durable)".

    .venv/bin/python hack/profile_hot_path.py [--clients 10] [--seconds 30] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from langgraph_sdk import get_client  # noqa: E402

from bench.runtime_throughput import (  # noqa: E402
    berth_server,
    db_mode,
    label_unsafe_output,
    load_average,
    stream_once,
)

PY_SPY = ROOT / ".venv" / "bin" / "py-spy"


def frame_name(frame: str) -> str:
    """`func (path/to/module.py:123)` -> `func (module path from site-packages or repo)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "runtime_image/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarize(raw: Path, top: int) -> list[str]:
    """Self and inclusive sample shares from py-spy's raw (collapsed) output."""
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";")[1:]]  # first: the thread
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    lines = [f"  {total} samples"]
    lines.append("  self (top of stack):")
    lines += [f"    {n / total * 100:5.1f}%  {name}" for name, n in self_counts.most_common(top)]
    lines.append("  inclusive (anywhere on the stack):")
    lines += [f"    {n / total * 100:5.1f}%  {name}" for name, n in inclusive.most_common(top * 3)]
    return lines


async def load(url: str, clients: int, seconds: float) -> int:
    sdk = [get_client(url=url, timeout=60.0) for _ in range(clients)]
    threads = [(await c.threads.create())["thread_id"] for c in sdk]
    done = 0
    deadline = time.monotonic() + seconds

    async def one(client: Any, thread_id: str) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await stream_once(client, thread_id, done)
            done += 1

    try:
        await asyncio.gather(*(one(c, t) for c, t in zip(sdk, threads, strict=True)))
    finally:
        for c in sdk:
            await c.aclose()
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0, help="sampling time (30)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None, help="keep the raw profiles here")
    parser.add_argument("--unsafe-fast-db", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.clients <= 100 or not 1 <= args.seconds <= 300:
        parser.error("--clients must be 1..100 and --seconds 1..300")
    durable = not args.unsafe_fast_db
    if not durable:
        label_unsafe_output()
    out = args.out or Path(tempfile.mkdtemp(prefix="berth-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"postgres: {db_mode(durable)}; load average: {load_average()}", flush=True)
    with berth_server(True, durable) as target:
        # Warm-up outside the profile: assistants cached, statements prepared.
        asyncio.run(load(target.url, args.clients, 3.0))
        spies = {}
        for role in ("berth api", "berth worker"):
            raw = out / f"{role.split()[1]}.txt"
            command = [
                str(PY_SPY), "record", "--format", "raw", "--nonblocking",
                "--duration", str(int(args.seconds)), "--output", str(raw),
                "--pid", str(target.processes[role]),
            ]  # fmt: skip
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            spies[role] = (raw, spy)
        cpu_before = target.cpu_seconds()
        runs = asyncio.run(load(target.url, args.clients, args.seconds))
        cpu_after = target.cpu_seconds()
        for _, spy in spies.values():
            spy.wait(60)
    print(f"{runs} streaming runs from {args.clients} clients in {args.seconds:.0f} s")
    print(f"load average after: {load_average()}")
    print(
        "CPU ms/run (py-spy adds some): "
        + ", ".join(f"{k} {(cpu_after[k] - cpu_before[k]) / runs * 1000:.2f}" for k in cpu_after)
    )
    for role, (raw, _) in spies.items():
        print(f"{role} ({raw}):")
        print("\n".join(summarize(raw, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
