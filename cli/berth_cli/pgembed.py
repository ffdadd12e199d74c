"""An embedded Postgres for `berth dev`: the system's Postgres binaries, data in a folder.

`initdb` runs once; later starts reuse the data, so threads, runs and checkpoints outlive
`berth dev` (also a SIGKILL: Postgres recovers from its WAL). The server listens on a free
loopback port with no Unix socket, trusts local connections, and stops when `berth dev`
does (fast shutdown), even when `berth dev` is killed.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from berth_cli import procs

USER = "berth"


class PostgresError(RuntimeError):
    """The embedded Postgres cannot start; the message says why and what to do."""


def pg_bin(name: str) -> str:
    """The newest `/usr/lib/postgresql/*/bin/<name>` (Debian), else `<name>` on PATH."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise PostgresError(
            f"no Postgres binaries ({name} not found): install PostgreSQL (Debian/Ubuntu: "
            "apt-get install postgresql; macOS: brew install postgresql), or set DATABASE_URI"
        )
    return path


def tail(path: Path, lines: int = 20) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class EmbeddedPostgres:
    """`start()` returns a URI; `stop()` shuts the server down."""

    home: Path  # e.g. <project>/.berth/dev
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    initialized_now: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.home / "postgres"

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"

    @property
    def uri(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def _init(self, user: str | None) -> None:
        t0 = time.monotonic()
        self.data.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data, 0o700)
        if user is not None:
            procs.chown_tree(self.data, user)
        result = subprocess.run(
            [pg_bin("initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8"],
            capture_output=True,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            user=user,
            cwd=self.data,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise PostgresError(
                f"initdb failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )
        self.initialized_now = True
        self.timings["initdb"] = time.monotonic() - t0

    def _stop_orphan(self) -> None:
        """A postmaster left by a `berth dev` that died is stopped before a new start."""
        pidfile = self.data / "postmaster.pid"
        if not pidfile.is_file():
            return
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (ValueError, IndexError, OSError):
            return
        if pid <= 0 or not procs.alive(pid):
            return
        os.kill(pid, signal.SIGINT)
        if not procs.wait_gone(pid, 30):
            raise PostgresError(f"the Postgres of {self.data} (pid {pid}) does not stop")

    def start(self, timeout: float = 60) -> str:
        """Launch and wait until it accepts connections."""
        uri = self.launch()
        self.wait_ready(timeout)
        return uri

    def launch(self) -> str:
        """Launch without waiting (`wait_ready` later): the runtime's imports overlap the
        server's start-up, and the runtime retries its first connection anyway."""
        user = procs.unprivileged_user()
        if user is not None:
            blocked = procs.unreachable_ancestor(self.data, user)
            if blocked is not None:
                raise PostgresError(
                    f"running as root, Postgres runs as user {user!r}, which cannot enter "
                    f"{blocked}: `chmod o+x {blocked}`, run berth dev as a normal user, or "
                    "set DATABASE_URI"
                )
        if not (self.data / "PG_VERSION").is_file():
            self._init(user)
        else:
            self._stop_orphan()
        if user is not None:
            procs.chown_tree(self.data, user)
        t0 = time.monotonic()
        self.port = procs.free_port()
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [
            pg_bin("postgres"), "-D", str(self.data), "-p", str(self.port),
            "-h", "127.0.0.1", "-k", "", "-c", "max_connections=100",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "LC_ALL": "C.UTF-8"},
                user=user,
                cwd=self.data,
                preexec_fn=procs.die_with_parent(signal.SIGINT),
                start_new_session=True,
            )
        self.timings["launch"] = time.monotonic() - t0
        return self.uri

    def wait_ready(self, timeout: float = 60) -> None:
        import psycopg

        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PostgresError(
                    f"Postgres exited with code {self.proc.returncode}; "
                    f"last lines of {self.log}:\n{tail(self.log)}"
                )
            try:
                with psycopg.connect(self.uri, connect_timeout=1):
                    return
            except psycopg.OperationalError:
                time.sleep(0.05)
        raise PostgresError(f"Postgres is not ready after {timeout:.0f}s; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, signal.SIGINT, timeout=30)
            self.proc = None
