"""Start-up time of `berth dev` next to `langgraph dev`, same agent folder, same machine.

Timed: from launching the command to the first `200` from `GET /ok` (the API answers and
the graphs are loaded). Each server runs `examples/agent` from a fresh copy of the folder:

  cold   the first start in the fresh folder: Berth runs `initdb` into `.berth/dev`,
         applies its migrations; `langgraph dev` creates its `.langgraph_api` state;
  warm   later starts in the same folder (median of `--warm` starts): Berth reuses the
         Postgres data (threads survive), `langgraph dev` its pickled in-memory state.

Both run without reload and without Redis (`berth dev --no-redis`), and are stopped with
SIGINT between starts. The peer is `langgraph dev` from langgraph-cli[inmem] in
.venv-bench (hack/ensure-bench-venv.sh).

    .venv/bin/python bench/berth_dev_start.py [--warm 3] [--no-peer]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "examples" / "agent"
BERTH = ROOT / ".venv" / "bin" / "berth"
BENCH_VENV = ROOT / ".venv-bench"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_start(argv: Sequence[str], cwd: Path, env: dict[str, str], url: str, log: Path) -> float:
    """Seconds from launch to the first 200 on /ok; the process is stopped afterwards."""
    t0 = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = t0 + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited ({proc.returncode}); see {log}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ok", timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - t0
            time.sleep(0.02)
        raise RuntimeError(f"{argv[0]} not ready after 180 s; see {log}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fresh_copy(prefix: str) -> Path:
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)  # as root, berth dev's Postgres runs as `postgres` and must enter it
    folder = work / "agent"
    shutil.copytree(AGENT, folder, ignore=shutil.ignore_patterns(".berth", "__pycache__"))
    return folder


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URI", "REDIS_URI")}
    env.update(
        AGENT_MODEL_PROVIDER="fake",
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
    )
    return env


def bench_berth(warm: int) -> tuple[float, list[float]]:
    folder = fresh_copy("berth-bench-dev-")
    log = folder.parent / "berth-dev.log"

    def start() -> float:
        port = free_port()
        argv = [str(BERTH), "dev", "--no-reload", "--no-redis", "--port", str(port)]
        return time_start(argv, folder, clean_env(), f"http://127.0.0.1:{port}", log)

    try:
        cold = start()
        return cold, [start() for _ in range(warm)]
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


def bench_langgraph_dev(warm: int) -> tuple[float, list[float]]:
    subprocess.run(["bash", str(ROOT / "hack" / "ensure-bench-venv.sh")], check=True)
    langgraph = BENCH_VENV / "bin" / "langgraph"
    folder = fresh_copy("berth-bench-lgdev-")
    log = folder.parent / "langgraph-dev.log"

    def start() -> float:
        port = free_port()
        argv = [
            str(langgraph), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
            "--port", str(port), "--config", "langgraph.json", "--server-log-level", "WARNING",
        ]  # fmt: skip
        return time_start(argv, folder, clean_env(), f"http://127.0.0.1:{port}", log)

    try:
        cold = start()
        return cold, [start() for _ in range(warm)]
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="berth dev vs langgraph dev: start-up time")
    parser.add_argument("--warm", type=int, default=3, help="warm starts per server")
    parser.add_argument("--no-peer", action="store_true", help="skip langgraph dev (no ratio)")
    args = parser.parse_args(argv)
    cores = os.cpu_count()
    load = os.getloadavg()[0]
    print(
        f">> {platform.node()}: {cores} cores, load {load:.2f}, Python {platform.python_version()}"
    )
    rows: list[tuple[str, float, float, list[float]]] = []
    cold, warms = bench_berth(args.warm)
    rows.append(("berth dev", cold, statistics.median(warms), warms))
    if not args.no_peer:
        cold, warms = bench_langgraph_dev(args.warm)
        rows.append(("langgraph dev", cold, statistics.median(warms), warms))
    print(f"{'server':<14} {'cold s':>7} {'warm s (median)':>16}  warm starts")
    for name, c, w, all_warm in rows:
        starts = ", ".join(f"{x:.2f}" for x in all_warm)
        print(f"{name:<14} {c:>7.2f} {w:>16.2f}  [{starts}]")
    if len(rows) == 2:
        berth, peer = rows
        print(f"cold ratio berth/langgraph: {berth[1] / peer[1]:.2f}")
        print(f"warm ratio berth/langgraph: {berth[2] / peer[2]:.2f}")
    print(f">> load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
