"""The operator when the API server is out of its reach for 30 s: it recovers by itself and
the conditions catch up with what changed meanwhile.

The operator talks to the API server through a TCP relay this test controls; cutting the
relay drops its connections and refuses new ones (what a partition or an API server
restart looks like from the operator), while the test itself still reaches the API server
directly and changes things.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    AGD,
    OperatorProcess,
    agent,
    apply,
    berth_crds,
    delete_all_agentdeployments,
    external_secrets,
    start_operator,
    wait_ready,
)

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds"]

OUTAGE_SECONDS = 30


class Relay:
    """A TCP relay to the API server that can be cut and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.conns: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self.lock:
            self.conns.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            conns = list(self.conns)
        for s in conns:
            self._close(s)

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.server.close()


@pytest.fixture
def relayed_env(kube_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[dict[str, str], Relay]]:
    """An environment whose kubeconfig reaches the API server only through a Relay."""
    config = yaml.safe_load(Path(kube_env["KUBECONFIG"]).read_text())
    url = urlparse(config["clusters"][0]["cluster"]["server"])
    assert url.hostname and url.port
    relay = Relay((url.hostname, url.port))
    config["clusters"][0]["cluster"]["server"] = f"https://{url.hostname}:{relay.port}"
    path = tmp_path / "kubeconfig-relayed"
    path.write_text(yaml.safe_dump(config))
    yield {**kube_env, "KUBECONFIG": str(path)}, relay
    relay.close()


def _caught_up(kubectl: Kubectl, namespace: str, name: str) -> bool:
    out = kubectl("get", AGD, name, "-n", namespace, "-o", "json", check=False)
    if out.returncode != 0:
        return False
    body: dict[str, Any] = json.loads(out.stdout)
    st = body.get("status") or {}
    ready = [c for c in st.get("conditions") or () if c["type"] == "Ready"]
    return (
        st.get("observedGeneration") == body["metadata"]["generation"]
        and bool(ready)
        and ready[0]["status"] == "True"
    )


def test_the_operator_recovers_from_30_s_without_the_api_server(
    berth_crds: None,
    kubectl: Kubectl,
    namespace: str,
    relayed_env: tuple[dict[str, str], Relay],
) -> None:
    env, relay = relayed_env
    external_secrets(kubectl, namespace)
    op: OperatorProcess = start_operator(env, namespace)
    try:
        apply(kubectl, namespace, agent("before"))
        wait_ready(kubectl, namespace, "before")

        relay.cut()
        cut_at = time.monotonic()
        # Meanwhile: a spec change, a new deployment, a deletion of a child.
        kubectl("patch", AGD, "before", "-n", namespace, "--type=merge",
                "-p", '{"spec":{"server":{"replicas":2}}}')  # fmt: skip
        apply(kubectl, namespace, agent("during"))
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
        assert op.proc.poll() is None, op.log()  # it waits; it does not crash
        relay.restore()
        restored = time.monotonic()

        deadline = restored + 120
        while not all(_caught_up(kubectl, namespace, n) for n in ("before", "during")):
            assert time.monotonic() < deadline, op.log()[-4000:]
            time.sleep(0.5)
        print(f"conditions caught up {time.monotonic() - restored:.1f} s after a "
              f"{OUTAGE_SECONDS} s outage")  # fmt: skip
        server = json.loads(
            kubectl("get", "deployment", "before-server", "-n", namespace, "-o", "json").stdout
        )
        assert server["spec"]["replicas"] == 2
    finally:
        relay.restore()
        delete_all_agentdeployments(kubectl, namespace)
        op.stop()
