"""Runtime throughput: Berth against `langgraph dev`, same graph, same client, same run.

N concurrent langgraph-sdk clients each own one thread and run a trivial one-node graph
(bench/graphs/echo.py) on it back to back, so a thread never has two runs at once and
every run is a real create -> queue -> execute -> checkpoint -> stream round trip.

Two phases per server, each with `--runs` runs in total:
  stream  `runs.stream(thread, "echo", stream_mode="values")`, timing per run
          - first event: request sent -> first SSE event (the `metadata` event: the run
            row exists);
          - first values: request sent -> first `values` event (a worker picked the run up
            and the graph started);
          - complete: request sent -> end of the stream (run finished).
  wait    `runs.wait(...)`: latency of the whole call, and runs/s = runs / wall time.
Both phases also report the server's CPU time per run (user+system, from /proc, over the
server's process trees: berth-runtime + Postgres + Redis for Berth), and the server's CPU
use at rest is measured for a few seconds before any load.

Berth runs on real Postgres and Redis started from local binaries. The peers (`--peers`):
  langgraph-dev  the official in-memory dev server (`langgraph dev` from
                 langgraph-cli[inmem], installed in .venv-bench by hack/ensure-bench-venv.sh),
                 which keeps everything in process memory;
  aegra-redis    Aegra (PyPI aegra-api, an open Agent Server on Postgres, in .venv-aegra made
                 by hack/ensure-aegra-venv.sh) on its own Postgres, with its Redis broker and
                 Redis job queue (REDIS_BROKER_ENABLED=true);
  aegra-single   the same Aegra in its single-instance mode (in-process queues, no Redis).
All get 10 concurrent jobs per worker. Everything binds to 127.0.0.1.

Postgres (Berth's and Aegra's) is durable by default: fsync, synchronous_commit and
full_page_writes on, as Postgres ships. `--unsafe-fast-db` turns them off (the old mode) and
labels every line the bench prints with `[UNSAFE fsync=off]`.

    .venv/bin/python bench/runtime_throughput.py [--clients 10] [--runs 200] [--unsafe-fast-db]
"""

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the repo, on sys.path
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from langgraph_sdk import get_client  # noqa: E402

from examples.demo_runtime import serve_berth_runtime, stop_process, wait_until_ok  # noqa: E402
from tests.support.servers import (  # noqa: E402
    create_database,
    free_port,
    postgres_server,
    redis_server,
    wait_for_port,
)

GRAPH_CONFIG = ROOT / "bench" / "graphs" / "langgraph.json"
ASSISTANT = "echo"
BENCH_VENV = ROOT / ".venv-bench"
AEGRA_VENV = ROOT / ".venv-aegra"
PEERS = ("langgraph-dev", "aegra-redis", "aegra-single")
UNSAFE_LABEL = "[UNSAFE fsync=off] "
JOBS_PER_WORKER = 10
WARMUP_RUNS = 10
IDLE_SECONDS = 3.0

# ---------------------------------------------------------------------------------------
# Pure: statistics and the report
# ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of an empty sample")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Phase:
    """One phase on one server: wall time, server-side CPU time, per-run latencies (s)."""

    runs: int
    wall: float
    cpu_by_process: dict[str, float]
    latencies: dict[str, list[float]]

    @property
    def server_cpu(self) -> float:
        return sum(self.cpu_by_process.values())

    @property
    def runs_per_second(self) -> float:
        return self.runs / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_ms_per_run(self) -> float:
        return self.server_cpu / self.runs * 1000 if self.runs else 0.0

    def p(self, metric: str, q: float) -> float:
        return percentile(self.latencies[metric], q)


@dataclass(frozen=True)
class ServerResult:
    name: str
    idle_cpu_ms_per_s: float  # what the server burns with no load (pollers, heartbeats)
    stream: Phase
    wait: Phase


ROWS: list[tuple[str, str, str]] = [
    # label, phase, metric ("" means runs per second, "cpu" server CPU ms per run)
    ("stream: runs/s", "stream", ""),
    ("stream: first event p50 ms", "stream", "first_event"),
    ("stream: first event p99 ms", "stream", "first_event"),
    ("stream: first values p50 ms", "stream", "first_values"),
    ("stream: first values p99 ms", "stream", "first_values"),
    ("stream: complete p50 ms", "stream", "complete"),
    ("stream: complete p99 ms", "stream", "complete"),
    ("wait: runs/s", "wait", ""),
    ("wait: latency p50 ms", "wait", "complete"),
    ("wait: latency p99 ms", "wait", "complete"),
    ("stream: server CPU ms/run", "stream", "cpu"),
    ("wait: server CPU ms/run", "wait", "cpu"),
    ("idle: server CPU ms/s", "idle", "cpu"),
]


def row_value(result: ServerResult, label: str, phase: str, metric: str) -> float:
    if phase == "idle":
        return result.idle_cpu_ms_per_s
    data = result.stream if phase == "stream" else result.wait
    if not metric:
        return data.runs_per_second
    if metric == "cpu":
        return data.cpu_ms_per_run
    return data.p(metric, 99 if "p99" in label else 50) * 1000


def report(berth: ServerResult, peers: Sequence[ServerResult]) -> str:
    """A table of every metric, each peer followed by the Berth / peer ratio (above 1 means
    Berth is higher), then one line per phase with the runs/s ratio against each peer."""
    header = f"{'metric':<30}{'berth':>12}"
    for peer in peers:
        header += f"{peer.name:>15}{'b/peer':>8}"
    lines = [header, "-" * len(header)]
    for label, phase, metric in ROWS:
        ours = row_value(berth, label, phase, metric)
        line = f"{label:<30}{ours:>12.1f}"
        for peer in peers:
            theirs = row_value(peer, label, phase, metric)
            ratio = f"{ours / theirs:.2f}" if theirs else "n/a"
            line += f"{theirs:>15.1f}{ratio:>8}"
        lines.append(line)
    for result in (berth, *peers):
        lines.append(f"{result.name} server CPU ms/run by process: {cpu_breakdown(result)}")
    if peers:
        lines.append("")
        lines.extend(ratio_lines(berth, peers))
    return "\n".join(lines)


def ratio_lines(berth: ServerResult, peers: Sequence[ServerResult]) -> list[str]:
    """`runs/s stream: berth/langgraph-dev 1.80x  berth/aegra-redis 4.10x ...`, per phase."""
    lines = []
    for label in ("stream: runs/s", "wait: runs/s"):
        phase = label.split(":")[0]
        ours = row_value(berth, label, phase, "")
        parts = []
        for peer in peers:
            theirs = row_value(peer, label, phase, "")
            parts.append(f"berth/{peer.name} " + (f"{ours / theirs:.2f}x" if theirs else "n/a"))
        lines.append(f"runs/s {phase + ':':<8}" + "  ".join(parts))
    return lines


def cpu_breakdown(result: ServerResult) -> str:
    parts = []
    for label, phase in (("stream", result.stream), ("wait", result.wait)):
        each = ", ".join(
            f"{name} {cpu / phase.runs * 1000:.1f}" for name, cpu in phase.cpu_by_process.items()
        )
        parts.append(f"{label}: {each}")
    return "; ".join(parts)


def tree_cpu_seconds(stats: dict[int, tuple[int, float]], roots: Sequence[int]) -> float:
    """CPU seconds of `roots` and all their descendants, from {pid: (ppid, cpu seconds)}."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    seen: set[int] = set()
    todo = [r for r in roots if r in stats]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return sum(stats[pid][1] for pid in seen)


def parse_proc_stat(text: str, ticks: float) -> tuple[int, float]:
    """(ppid, user+system CPU seconds of the process and its reaped children) of /proc/N/stat."""
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / ticks


def read_proc_stats() -> dict[int, tuple[int, float]]:
    ticks = float(os.sysconf("SC_CLK_TCK"))
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                stats[int(entry.name)] = parse_proc_stat((entry / "stat").read_text(), ticks)
    return stats


@dataclass(frozen=True)
class Target:
    """A server under test: its URL and the named process trees whose CPU time is its cost."""

    url: str
    processes: dict[str, int]

    def cpu_seconds(self) -> dict[str, float]:
        stats = read_proc_stats()
        return {name: tree_cpu_seconds(stats, [pid]) for name, pid in self.processes.items()}


# ---------------------------------------------------------------------------------------
# The load: N clients, one thread each, runs back to back
# ---------------------------------------------------------------------------------------


def split(total: int, parts: int) -> list[int]:
    """Share `total` runs between `parts` clients as evenly as possible."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def stream_once(client: Any, thread_id: str, index: int) -> dict[str, float]:
    start = time.perf_counter()
    first_event = first_values = None
    final: Any = None
    async for chunk in client.runs.stream(
        thread_id, ASSISTANT, input={"text": f"ping {index}"}, stream_mode="values"
    ):
        now = time.perf_counter() - start
        if first_event is None:
            first_event = now
        if chunk.event == "values":
            final = chunk.data
            if first_values is None:
                first_values = now
        if chunk.event == "error":
            raise RuntimeError(f"run failed: {chunk.data}")
    complete = time.perf_counter() - start
    if first_event is None or first_values is None or final.get("reply") != f"ping {index}":
        raise RuntimeError(f"unexpected stream for run {index}: last values {final!r}")
    return {"first_event": first_event, "first_values": first_values, "complete": complete}


async def wait_once(client: Any, thread_id: str, index: int) -> dict[str, float]:
    start = time.perf_counter()
    values = await client.runs.wait(thread_id, ASSISTANT, input={"text": f"ping {index}"})
    elapsed = time.perf_counter() - start
    if not isinstance(values, dict) or values.get("reply") != f"ping {index}":
        raise RuntimeError(f"unexpected result for run {index}: {values!r}")
    return {"complete": elapsed}


RunOnce = Callable[[Any, str, int], Awaitable[dict[str, float]]]


async def run_phase(
    target: Target, clients: Sequence[Any], threads: Sequence[str], runs: int, once: RunOnce
) -> Phase:
    latencies: dict[str, list[float]] = {}
    counter = iter(range(runs))

    async def worker(client: Any, thread_id: str, count: int) -> None:
        for _ in range(count):
            sample = await once(client, thread_id, next(counter))
            for key, value in sample.items():
                latencies.setdefault(key, []).append(value)

    cpu_before = target.cpu_seconds()
    start = time.perf_counter()
    await asyncio.gather(
        *(
            worker(c, t, n)
            for c, t, n in zip(clients, threads, split(runs, len(clients)), strict=True)
        )
    )
    wall = time.perf_counter() - start
    cpu_after = target.cpu_seconds()
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
    return Phase(runs, wall, cpu, latencies)


async def measure(name: str, target: Target, n_clients: int, runs: int) -> ServerResult:
    clients = [get_client(url=target.url, timeout=60.0) for _ in range(n_clients)]
    try:
        threads = [(await c.threads.create())["thread_id"] for c in clients]
        before = sum(target.cpu_seconds().values())
        await asyncio.sleep(IDLE_SECONDS)
        idle = (sum(target.cpu_seconds().values()) - before) / IDLE_SECONDS * 1000
        print(f"   {name}: warming up ({WARMUP_RUNS} runs)", flush=True)
        await run_phase(target, clients, threads, WARMUP_RUNS, wait_once)
        print(f"   {name}: stream phase ({runs} runs, {n_clients} clients)", flush=True)
        stream = await run_phase(target, clients, threads, runs, stream_once)
        print(f"   {name}: wait phase ({runs} runs, {n_clients} clients)", flush=True)
        wait = await run_phase(target, clients, threads, runs, wait_once)
    finally:
        for c in clients:
            await c.aclose()
    return ServerResult(name, idle, stream, wait)


# ---------------------------------------------------------------------------------------
# The servers
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def berth_server(split: bool = False, durable: bool = True) -> Iterator[Target]:
    """Berth on local Postgres and Redis: one `serve` process (API and workers), or with
    `split` an `api` process and a `worker` process, as the operator deploys it. Postgres is
    durable (as shipped) unless `durable` is False."""
    print(f">> starting Postgres ({db_mode(durable)}) and Redis for Berth", flush=True)
    with postgres_server(durable=durable) as postgres, redis_server() as redis:
        database_uri = create_database(postgres.uri, "berth_bench")
        stores = {"postgres": postgres.proc.pid, "redis": redis.proc.pid}
        # The peer runs with `--server-log-level WARNING`: no access log line per request on
        # either side.
        serve = functools.partial(
            serve_berth_runtime, GRAPH_CONFIG, database_uri, redis.uri,
            jobs_per_worker=JOBS_PER_WORKER, env={"LOG_LEVEL": "warning"},
        )  # fmt: skip
        if not split:
            print(">> starting berth-runtime serve", flush=True)
            with serve() as server:
                yield Target(server.url, {"berth-runtime": server.proc.pid, **stores})
            return
        print(">> starting berth-runtime api + berth-runtime worker", flush=True)
        with serve(role="api") as api, serve(role="worker") as worker:
            processes = {"berth api": api.proc.pid, "berth worker": worker.proc.pid, **stores}
            yield Target(api.url, processes)


def db_mode(durable: bool) -> str:
    return (
        "durable: fsync, synchronous_commit, full_page_writes on"
        if durable
        else "UNSAFE: fsync, synchronous_commit, full_page_writes off"
    )


class LinePrefixer:
    """A text stream that writes `prefix` before every line it passes on to `stream`."""

    def __init__(self, stream: TextIO, prefix: str) -> None:
        self.stream = stream
        self.prefix = prefix
        self.at_line_start = True

    def write(self, text: str) -> int:
        out = []
        for piece in text.splitlines(keepends=True):
            if self.at_line_start:
                out.append(self.prefix)
            out.append(piece)
            self.at_line_start = piece.endswith("\n")
        self.stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def label_unsafe_output() -> None:
    """From now on every line this process prints says the database was not durable."""
    sys.stdout = LinePrefixer(sys.stdout, UNSAFE_LABEL)
    sys.stderr = LinePrefixer(sys.stderr, UNSAFE_LABEL)


def run_script(script: str) -> None:
    """Run a hack/ script, its output passed through this process's (labelled) stdout."""
    done = subprocess.run(
        ["bash", str(ROOT / "hack" / script)], capture_output=True, text=True, check=False
    )
    for line in (done.stdout + done.stderr).splitlines():
        print(f"   {script}: {line}", flush=True)
    if done.returncode != 0:
        raise RuntimeError(f"hack/{script} failed with exit code {done.returncode}")


def ensure_bench_venv() -> Path:
    run_script("ensure-bench-venv.sh")
    return BENCH_VENV / "bin" / "langgraph"


def wait_until_healthy(url: str, proc: "subprocess.Popen[bytes]", timeout: float) -> None:
    """Wait until GET /health answers 200 (Aegra's readiness route)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early with code {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url}/health did not answer 200 within {timeout}s")


@contextlib.contextmanager
def aegra_server(use_redis: bool, durable: bool = True) -> Iterator[Target]:
    """Aegra (`aegra serve`, from .venv-aegra) serving bench/graphs on a Postgres of its own
    and, with `use_redis`, a Redis of its own as its broker and job queue (its multi-instance
    mode); without, its single-instance mode (in-process queues). One worker loop with 10
    jobs, like the other servers; logging at WARNING."""
    run_script("ensure-aegra-venv.sh")
    mode = "redis broker + job queue" if use_redis else "single instance, no Redis"
    print(f">> starting Postgres ({db_mode(durable)}) for Aegra ({mode})", flush=True)
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(postgres_server(durable=durable))
        processes = {"postgres": postgres.proc.pid}
        env = {
            **os.environ,
            "DATABASE_URL": create_database(postgres.uri, "aegra_bench"),
            "REDIS_BROKER_ENABLED": "true" if use_redis else "false",
            "WORKER_COUNT": "1",
            "N_JOBS_PER_WORKER": str(JOBS_PER_WORKER),
            "LOG_LEVEL": "WARNING",
            "AUTH_TYPE": "noop",
            "CRON_ENABLED": "false",
        }
        if use_redis:
            redis = stack.enter_context(redis_server())
            env["REDIS_URL"] = redis.uri
            processes["redis"] = redis.proc.pid
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="berth-aegra-")))
        graphs = workdir / "graphs"
        shutil.copytree(GRAPH_CONFIG.parent, graphs, ignore=shutil.ignore_patterns("__pycache__"))
        # aegra.json: the same graph table as langgraph.json.
        config = json.loads(GRAPH_CONFIG.read_text())
        (graphs / "aegra.json").write_text(json.dumps({"graphs": config["graphs"]}))
        port = free_port()
        log = workdir / "aegra.log"
        command = [
            str(AEGRA_VENV / "bin" / "aegra"), "serve", "--host", "127.0.0.1",
            "--port", str(port), "--config", "aegra.json",
        ]  # fmt: skip
        print(f">> starting aegra serve ({mode})", flush=True)
        # `aegra serve` runs uvicorn as a child process: its own process group, so that
        # stopping it stops both (a lone SIGTERM to the CLI leaves uvicorn running).
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(
                command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=graphs,
                start_new_session=True,
            )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_port(port, 120, proc)
            wait_until_healthy(url, proc, timeout=120)
            yield Target(url, {"aegra": proc.pid, **processes})
        except BaseException:
            stop_group(proc)
            tail = log.read_text(errors="replace")[-3000:]
            print(f"!! aegra log ({log}):\n{tail}", file=sys.stderr)
            raise
        stop_group(proc)


def stop_group(proc: "subprocess.Popen[bytes]", grace: float = 10.0) -> None:
    """SIGTERM the process group `proc` leads, SIGKILL it after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break  # every member has exited
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


ServerFactory = Callable[[], contextlib.AbstractContextManager[Target]]


def peer_server(name: str, durable: bool) -> ServerFactory:
    if name == "langgraph-dev":
        return langgraph_dev_server
    if name in ("aegra-redis", "aegra-single"):
        return functools.partial(aegra_server, name == "aegra-redis", durable)
    raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")


@contextlib.contextmanager
def langgraph_dev_server() -> Iterator[Target]:
    """`langgraph dev` on a copy of bench/graphs: it resolves graph paths against its
    working directory and writes its state (.langgraph_api) there."""
    langgraph = ensure_bench_venv()
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-lgdev-"))
    graphs = workdir / "graphs"
    shutil.copytree(GRAPH_CONFIG.parent, graphs, ignore=shutil.ignore_patterns("__pycache__"))
    log = workdir / "langgraph-dev.log"
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
    }
    command = [
        str(langgraph), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
        "--port", str(port), "--config", "langgraph.json",
        "--n-jobs-per-worker", str(JOBS_PER_WORKER), "--server-log-level", "WARNING",
    ]  # fmt: skip
    print(">> starting langgraph dev (langgraph-cli[inmem], in-memory)", flush=True)
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=graphs
        )
    try:
        wait_for_port(port, 120, proc)
        url = f"http://127.0.0.1:{port}"
        wait_until_ok(url, proc, timeout=120)
        yield Target(url, {"langgraph dev": proc.pid})
    except BaseException:
        stop_process(proc)
        tail = log.read_text(errors="replace")[-3000:]
        print(f"!! langgraph dev log ({log}):\n{tail}", file=sys.stderr)
        raise
    stop_process(proc)
    shutil.rmtree(workdir, ignore_errors=True)


def merge(phases: Sequence[Phase]) -> Phase:
    """Several chunks of one phase as one: runs, wall and CPU add up, samples pool."""
    cpu: dict[str, float] = {}
    latencies: dict[str, list[float]] = {}
    for ph in phases:
        for name, value in ph.cpu_by_process.items():
            cpu[name] = cpu.get(name, 0.0) + value
        for key, values in ph.latencies.items():
            latencies.setdefault(key, []).extend(values)
    return Phase(sum(p.runs for p in phases), sum(p.wall for p in phases), cpu, latencies)


async def measure_interleaved(
    servers: Sequence[tuple[str, Target]], n_clients: int, runs: int, rounds: int
) -> list[ServerResult]:
    """Both servers up at once; each phase is cut into `rounds` chunks that alternate between
    them (A stream, B stream, A wait, B wait, ...), so a change in the machine's load between
    chunks hits both sides instead of skewing the ratio. The idle server costs little."""
    sessions = []
    for name, target in servers:
        clients = [get_client(url=target.url, timeout=120.0) for _ in range(n_clients)]
        threads = [(await c.threads.create())["thread_id"] for c in clients]
        sessions.append((name, target, clients, threads))
    try:
        idle: dict[str, float] = {}
        for name, target, clients, threads in sessions:
            before = sum(target.cpu_seconds().values())
            await asyncio.sleep(IDLE_SECONDS)
            idle[name] = (sum(target.cpu_seconds().values()) - before) / IDLE_SECONDS * 1000
            print(f"   {name}: warming up ({WARMUP_RUNS} runs)", flush=True)
            await run_phase(target, clients, threads, WARMUP_RUNS, wait_once)
        chunks = split(runs, rounds)
        done: dict[tuple[str, str], list[Phase]] = {}
        for i, chunk in enumerate(chunks):
            print(f"   round {i + 1}/{rounds}: {chunk} runs per phase and server", flush=True)
            for phase, once in (("stream", stream_once), ("wait", wait_once)):
                for name, target, _, threads in sessions:
                    # Fresh connections per chunk: while the other server runs its chunk,
                    # uvicorn closes idle keep-alive connections (5 s), and reusing one that
                    # is being closed fails the request.
                    fresh = [get_client(url=target.url, timeout=120.0) for _ in threads]
                    try:
                        ph = await run_phase(target, fresh, threads, chunk, once)
                    finally:
                        for c in fresh:
                            await c.aclose()
                    done.setdefault((name, phase), []).append(ph)
    finally:
        for _, _, clients, _ in sessions:
            for c in clients:
                await c.aclose()
    return [
        ServerResult(name, idle[name], merge(done[name, "stream"]), merge(done[name, "wait"]))
        for name, *_ in sessions
    ]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


async def bench_server(
    name: str,
    server: Callable[[], contextlib.AbstractContextManager[Target]],
    args: argparse.Namespace,
) -> ServerResult:
    with server() as target:
        return await asyncio.wait_for(measure(name, target, args.clients, args.runs), args.timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Berth vs langgraph dev: runs/s and latency.")
    parser.add_argument("--clients", type=int, default=10, help="concurrent SDK clients (10)")
    parser.add_argument("--runs", type=int, default=200, help="runs per phase and server (200)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per server (300)")
    parser.add_argument("--no-peer", action="store_true", help="no peer (no ratio)")
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated peers to compare against ({','.join(PEERS)})",
    )
    parser.add_argument(
        "--unsafe-fast-db",
        action="store_true",
        help="Postgres with fsync, synchronous_commit and full_page_writes off (not durable); "
        "every printed line is labelled " + UNSAFE_LABEL.strip(),
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="run both servers at once and alternate the phases in this many chunks "
        "(0: one server after the other)",
    )
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        "--split",
        action="store_true",
        default=True,
        help="Berth as an api and a worker process, as the operator deploys it (the default)",
    )
    layout.add_argument(
        "--serve",
        dest="split",
        action="store_false",
        help="Berth as one `serve` process (HTTP API and queue worker together)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 100 or not 1 <= args.runs <= 5000:
        parser.error("--clients must be 1..100 and --runs 1..5000")
    if not 0 <= args.rounds <= 50 or args.rounds > args.runs:
        parser.error("--rounds must be 0..50 and at most --runs")
    peer_names = [] if args.no_peer else [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peer_names) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; known: {', '.join(PEERS)}")
    durable = not args.unsafe_fast_db
    if not durable:
        label_unsafe_output()

    print(f">> runtime throughput: {args.clients} clients, {args.runs} runs per phase")
    print(f"   machine: {machine()}")
    print(f"   postgres: {db_mode(durable)}; load average at start: {load_average()}")
    berth_name = "berth (api + worker)" if args.split else "berth"
    berth_target = functools.partial(berth_server, args.split, durable)
    peer_targets = [(name, peer_server(name, durable)) for name in peer_names]
    peers: list[ServerResult] = []
    if args.rounds and peer_targets:
        with contextlib.ExitStack() as stack:
            servers = [(berth_name, stack.enter_context(berth_target()))]
            servers += [(name, stack.enter_context(server())) for name, server in peer_targets]
            berth, *peers = asyncio.run(
                asyncio.wait_for(
                    measure_interleaved(servers, args.clients, args.runs, args.rounds),
                    args.timeout * len(servers),
                )
            )
    else:
        berth = asyncio.run(bench_server(berth_name, berth_target, args))
        for name, server in peer_targets:
            peers.append(asyncio.run(bench_server(name, server, args)))
    print()
    print(report(berth, peers))
    print(f"load average at end: {load_average()}")
    print()
    print(
        "first event = request sent -> first SSE event (metadata); first values = -> first "
        "`values` event (graph started); complete = -> stream end or /wait response. "
        "server CPU = user+system CPU time of the server's processes during the phase "
        "(Berth: berth-runtime + Postgres + Redis; langgraph dev: its process; Aegra: its "
        "process + its Postgres (+ Redis)) / runs; "
        f"idle = the same over {IDLE_SECONDS:.0f} s with no load, per second. "
        "berth/peer above 1 means Berth is higher (better for runs/s, worse otherwise)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
