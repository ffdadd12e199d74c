"""Real Postgres and Redis servers for tests, started from local binaries.

Each server gets a temporary directory and a random free port on loopback, so
tests never depend on (or disturb) a system-wide service.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """Ask the kernel for an unused TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run `make install` (installs Debian's postgresql)")
    return path


@dataclass
class Server:
    uri: str
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# Settings that trade durability for speed: a crash (of the machine, not of Postgres) may lose
# or corrupt committed data. Tests want speed; benchmarks pass `durable=True` unless told not to.
UNSAFE_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
# Postgres as it ships: every commit flushed to the WAL on disk before it is acknowledged.
DURABLE_SETTINGS = ("fsync=on", "synchronous_commit=on", "full_page_writes=on")


@contextlib.contextmanager
def postgres_server(durable: bool = False) -> Iterator[Server]:
    """Run a throwaway Postgres cluster; yields a superuser URI to database `postgres`.

    By default fsync, synchronous_commit and full_page_writes are off (fast, for tests);
    `durable=True` keeps Postgres' shipped durability (all three on)."""
    workdir = Path(tempfile.mkdtemp(prefix="berth-pg-"))
    data = workdir / "data"
    user = "berth"
    env = dict(os.environ, LC_ALL="C.UTF-8")
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root; hand the directory to an unprivileged user.
        os.chmod(workdir, 0o777)
        run_as = (
            ["runuser", "-u", "postgres", "--"]
            if _has_user("postgres")
            else ["runuser", "-u", "nobody", "--"]
        )
        shutil.chown(workdir, user=run_as[2])
    subprocess.run(
        [
            *run_as,
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-U",
            user,
            "--auth=trust",
            "-E",
            "UTF8",
            *([] if durable else ["--no-sync"]),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *run_as,
            _pg_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(workdir),
            *(
                arg
                for setting in (DURABLE_SETTINGS if durable else UNSAFE_FAST_SETTINGS)
                for arg in ("-c", setting)
            ),
            "-c",
            "max_connections=300",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "postgres.log", "wb"),  # noqa: SIM115 - lives as long as the server
        env=env,
    )
    server = Server(f"postgresql://{user}@127.0.0.1:{port}/postgres", port, proc, workdir)
    try:
        wait_for_port(port, 60, proc)
        _wait_pg_ready(port)
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait_pg_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(
            [_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        )
        if r.returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError("postgres did not become ready")


@contextlib.contextmanager
def redis_server() -> Iterator[Server]:
    """Run a throwaway redis-server without persistence; yields its URI."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server not found: run `make install` (installs Debian's redis-server)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="berth-redis-"))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
        ],
        stdout=open(workdir / "redis.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    server = Server(f"redis://127.0.0.1:{port}/0", port, proc, workdir)
    try:
        wait_for_port(port, 30, proc)
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(admin_uri: str, name: str) -> str:
    """Create a fresh database on the server behind admin_uri; return its URI."""
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_uri.rsplit("/", 1)[0] + "/" + name
