"""Build the real in-sandbox executor (Go) once and run it on loopback for tests.

`hack/build-auth-proxy.sh` rebuilds only when auth_proxy/ changes (`go build` fetches
modules from the Go proxy).
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "hack" / "build-auth-proxy.sh"


def executor_binary() -> Path:
    """Path of a `berth-executor` built from the current sources (the project's build script
    caches it under ~/.cache/berth/auth-proxy-<hash of the Go sources>/bin)."""
    out = subprocess.run(
        ["bash", str(BUILD)], check=True, capture_output=True, text=True, timeout=900
    )
    return Path(out.stdout.strip().splitlines()[-1]) / "berth-executor"


@dataclass
class Executor:
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    hash_file: Path | None = None
    """The token hash file the executor reads on every request (empty: refuses all)."""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def running_executor(tmp: Path, workdir: Path | None = None) -> Iterator[Executor]:
    """`berth-executor serve` on 127.0.0.1 with a fresh token; stopped on exit."""
    binary = executor_binary()
    token = secrets.token_hex(32)
    hash_file = tmp / "executor-token-sha256"
    hash_file.write_text(hashlib.sha256(token.encode()).hexdigest())
    port = free_port()
    log_path = tmp / f"executor-{port}.log"
    proc = subprocess.Popen(
        [str(binary), "serve", "--addr", f"127.0.0.1:{port}", "--token-hash-file", str(hash_file)],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=str(workdir or tmp),
    )
    url = f"http://127.0.0.1:{port}"
    ex = Executor(url, token, proc, log_path, hash_file)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"berth-executor exited early:\n{ex.log()[-4000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"berth-executor not healthy:\n{ex.log()[-4000:]}")
            time.sleep(0.05)
        yield ex
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
