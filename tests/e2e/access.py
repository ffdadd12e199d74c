"""How e2e tests reach what runs on the node: `kubectl port-forward`, as a user would
reach a ClusterIP Service, and the example AgentDeployment's manifest."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.support.controlplane import ControlPlane, kubectl_binary

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def port_forward(cp: ControlPlane, namespace: str, target: str, port: int) -> Iterator[str]:
    """`kubectl port-forward` to a Service or a Pod; yields the local base URL."""
    local = free_port()
    proc = subprocess.Popen(
        [kubectl_binary(), "-n", namespace, "port-forward", target, f"{local}:{port}"],
        env=cp.env(),
        stdout=subprocess.DEVNULL,  # a line per connection: an unread pipe would fill
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), 1):
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        yield f"http://127.0.0.1:{local}"
    finally:
        proc.terminate()
        proc.wait()


def example_manifest(namespace: str) -> str:
    """examples/agentdeployment.yaml without its image: the operator's configured
    default (the registry's berth-runtime) runs it."""
    doc = yaml.safe_load((ROOT / "examples" / "agentdeployment.yaml").read_text())
    doc["spec"].pop("image", None)
    doc["spec"].pop("imagePullPolicy", None)
    doc["metadata"]["namespace"] = namespace
    return yaml.safe_dump(doc)


def pods(cp: ControlPlane, namespace: str, selector: str) -> list[dict[str, Any]]:
    """Pods matching a label selector, not counting those already being deleted."""
    out = cp.kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "json", check=True)
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]
