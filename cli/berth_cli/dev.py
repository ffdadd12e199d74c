"""`berth dev`: the runtime for local development, on an embedded Postgres, with reload.

A supervisor process: it starts Postgres (data in `<project>/.berth/dev/postgres`, unless
`DATABASE_URI` is set), Redis when `redis-server` is installed (optional: without it
workers poll Postgres), then `berth-runtime serve` as a child, and restarts that child
when a file of the project changes. Runs in flight during a reload are re-queued by the
runtime's shutdown and resume from their last checkpoint. Every child dies with the
supervisor, even when it is killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from berth_runtime.deepagent.entry import ENTRY_MODULE, entry_module, render_json
from rich.console import Console

from berth_cli import procs
from berth_cli.load import project_files, read_env_file
from berth_cli.pgembed import EmbeddedPostgres
from berth_cli.project import Project

POLL_SECONDS = 0.5
Snapshot = Mapping[str, tuple[int, int]]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Each watched file's (mtime_ns, size)."""
    out: dict[str, tuple[int, int]] = {}
    for path in project_files(root):
        with contextlib.suppress(OSError):
            st = path.stat()
            out[str(path.relative_to(root))] = (st.st_mtime_ns, st.st_size)
    return out


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """Files added, removed or modified between two snapshots, sorted."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def serve_config(project: Project) -> Path:
    """The langgraph.json the runtime serves: the project's own, or for a deep-agent folder
    the generated one in `<folder>/.berth/` (rewritten only when its content changes)."""
    if project.kind == "langgraph":
        return project.root / project.config_name
    out = project.root / ".berth"
    out.mkdir(exist_ok=True)
    files = {"langgraph.json": render_json(dict(project.config)), ENTRY_MODULE: entry_module(1)}
    for name, text in files.items():
        path = out / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    return out / "langgraph.json"


@dataclass
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 2024
    reload: bool = True
    redis: bool = True


class Stop(Exception):
    """SIGINT/SIGTERM reached the supervisor."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # Once: a second Ctrl-C must not cut the orderly stop of the children short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def wait_ok(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ok", timeout=1) as r:
            if r.status == 200:
                return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def redis(home: Path, console: Console, wanted: bool) -> Iterator[str | None]:
    """REDIS_URI if set; else a throwaway redis-server when installed; else none."""
    if os.environ.get("REDIS_URI"):
        yield os.environ["REDIS_URI"]
        return
    binary = shutil.which("redis-server") if wanted else None
    if binary is None:
        yield None
        return
    port = procs.free_port()
    workdir = Path(tempfile.mkdtemp(prefix="berth-dev-redis-"))
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
    ]  # fmt: skip
    with (home / "redis.log").open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=procs.die_with_parent(signal.SIGTERM),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 10
        while procs.port_in_use("127.0.0.1", port) is False and time.monotonic() < deadline:
            if proc.poll() is not None:
                console.print("[yellow]redis-server exited; going on without Redis[/]")
                yield None
                return
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        procs.stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


class Supervisor:
    """Owns the runtime child: start, wait until it answers, restart, stop."""

    def __init__(self, argv: list[str], env: dict[str, str], url: str, console: Console):
        self.argv, self.env, self.url, self.console = argv, env, url, console
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, before_wait: Callable[[], None] | None = None) -> bool:
        """Spawn the server, run `before_wait` (e.g. wait for Postgres), wait for /ok."""
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            preexec_fn=procs.die_with_parent(signal.SIGTERM),
            start_new_session=True,
        )
        if before_wait is not None:
            before_wait()
        if wait_ok(self.url, self.proc):
            self.console.print(f"[green]ready[/] in {time.monotonic() - t0:.2f} s: {self.url}")
            return True
        self.console.print(
            f"[red]the server did not start[/] (exit code {self.proc.poll()}); "
            "fix the error above, the server restarts on the next change"
        )
        return False

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, signal.SIGTERM, timeout=15)
            self.proc = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def run_dev(project: Project, options: DevOptions, console: Console) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit status."""
    home = project.root / ".berth" / "dev"
    home.mkdir(parents=True, exist_ok=True)
    if procs.port_in_use(options.host, options.port):
        console.print(f"[red]error:[/] port {options.port} on {options.host} is in use: --port N")
        return 2
    config = serve_config(project)
    old_int = signal.signal(signal.SIGINT, _raise_stop)
    old_term = signal.signal(signal.SIGTERM, _raise_stop)
    postgres: EmbeddedPostgres | None = None
    t0 = time.monotonic()
    try:
        database_uri = os.environ.get("DATABASE_URI") or os.environ.get("POSTGRES_URI")
        if database_uri:
            pg_line = "DATABASE_URI (from the environment)"
        else:
            postgres = EmbeddedPostgres(home)
            database_uri = postgres.launch()
            state = "created" if postgres.initialized_now else "reused"
            pg_line = (
                f"embedded, data {state} in {postgres.data.relative_to(project.root.parent)} "
                "(threads survive restarts)"
            )
        with redis(home, console, options.redis) as redis_uri:
            env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URI", "POSTGRES_URI")}
            if project.kind == "deepagent":
                for k, v in read_env_file(project).items():
                    env.setdefault(k, v)
            env.update(
                DATABASE_URI=database_uri,
                BERTH_LOG_FORMAT="text",
                # A reload stops the server: runs in flight are re-queued at once and
                # resume from their last checkpoint in the next server.
                BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS=env.get("BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS", "1"),
            )
            if redis_uri:
                env["REDIS_URI"] = redis_uri
            probe_host = "127.0.0.1" if options.host in ("0.0.0.0", "::", "") else options.host
            url = f"http://{probe_host}:{options.port}"
            argv = [
                sys.executable, "-m", "berth_runtime.cli", "serve",
                "--config", str(config), "--host", options.host, "--port", str(options.port),
            ]  # fmt: skip
            graphs = ", ".join(project.graphs)
            console.print(f"[bold]berth dev[/] {project.root} ({project.kind}; graphs: {graphs})")
            console.print(f"  API:      {url}")
            console.print(f"  Docs:     {url}/docs")
            console.print(f"  Postgres: {pg_line}")
            redis_line = redis_uri and (
                "REDIS_URI" if os.environ.get("REDIS_URI") else "embedded (no persistence)"
            )
            console.print(f"  Redis:    {redis_line or 'none (workers poll Postgres)'}")
            console.print(f"  Reload:   {'on' if options.reload else 'off'}")
            supervisor = Supervisor(argv, env, url, console)
            try:
                first_wait = postgres.wait_ready if postgres is not None else None
                return _serve(project, options, supervisor, console, t0, first_wait)
            finally:
                supervisor.stop()
    except Stop:
        console.print("stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        if postgres is not None:
            postgres.stop()


def _serve(
    project: Project,
    options: DevOptions,
    supervisor: Supervisor,
    console: Console,
    t0: float,
    first_wait: Callable[[], None] | None,
) -> int:
    """Start the runtime, then reload it on changes until a signal stops the supervisor."""
    started = supervisor.start(first_wait)
    console.print(f"berth dev started in {time.monotonic() - t0:.2f} s")
    if not options.reload:
        if not started:
            return 1
        assert supervisor.proc is not None
        return supervisor.proc.wait()
    before = snapshot(project.root)
    while True:
        time.sleep(POLL_SECONDS)
        after = snapshot(project.root)
        diff = changed(before, after)
        if diff:
            before = after
            shown = ", ".join(diff[:5]) + (" ..." if len(diff) > 5 else "")
            console.print(f"[cyan]changed:[/] {shown}; reloading")
            supervisor.stop()
            if project.kind == "deepagent":
                serve_config(project)
            supervisor.start()
        elif supervisor.proc is not None and supervisor.proc.poll() is not None:
            code = supervisor.proc.returncode
            supervisor.proc = None
            console.print(f"[red]the server exited[/] ({code}); waiting for a change")
