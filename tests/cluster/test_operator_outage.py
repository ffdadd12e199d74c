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
import uuid
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


AGENTS = 100  # each makes several children: over 300 objects in all
# The revision counts rollouts; the applied hash covers the namespace (compared apart).
VOLATILE_ANNOTATIONS = ("deployment.kubernetes.io/revision", "berth.dev/applied-hash")


def _end_state(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    """What the operator made in `namespace`, with what differs between two namespaces or two
    runs by nature (uids, timestamps, versions, the namespace's name, owner uids) taken out."""
    kinds = (
        "deployments,statefulsets,services,configmaps,secrets,serviceaccounts,roles,"
        "rolebindings,poddisruptionbudgets,horizontalpodautoscalers,networkpolicies"
    )
    out = kubectl(
        "get", kinds, "-n", namespace, "-l", "berth.dev/agentdeployment", "-o", "json"
    ).stdout
    state: dict[str, str] = {}
    for o in json.loads(out)["items"]:
        meta = o["metadata"]
        annotations = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k not in VOLATILE_ANNOTATIONS
        }
        content: Any = o.get("spec") if "spec" in o else sorted((o.get("data") or {}).keys())
        if o["kind"] == "Service":
            content = {k: v for k, v in o["spec"].items() if k not in ("clusterIP", "clusterIPs")}
        if o["kind"] in ("Role", "RoleBinding"):
            content = {
                "rules": o.get("rules"),
                "subjects": o.get("subjects"),
                "ref": o.get("roleRef"),
            }
        text = json.dumps(
            {"labels": meta.get("labels"), "annotations": annotations, "content": content},
            sort_keys=True,
        )
        state[f"{o['kind']}/{meta['name']}"] = text.replace(namespace, "<ns>")
    return state


def _all_ready(kubectl: Kubectl, namespace: str) -> bool:
    items = json.loads(kubectl("get", AGD, "-n", namespace, "-o", "json").stdout)["items"]
    return len(items) == AGENTS and all(
        (a.get("status") or {}).get("observedGeneration") == a["metadata"]["generation"]
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (a.get("status") or {}).get("conditions") or ()
        )
        for a in items
    )


def _reconcile_all(
    kubectl: Kubectl, namespace: str, kube_env: dict[str, str], restarts: int
) -> tuple[dict[str, str], float]:
    """Apply AGENTS AgentDeployments and let an operator reconcile them, SIGKILLing and
    restarting it `restarts` times on the way; the end state and the time to all Ready."""
    external_secrets(kubectl, namespace)
    apply(kubectl, namespace, *(agent(f"a{i:03d}") for i in range(AGENTS)))
    started = time.monotonic()
    op = start_operator(kube_env, namespace, "--standalone")
    try:
        for _ in range(restarts):
            op.wait_for_log("reconciled", timeout=120)
            time.sleep(2)  # mid-way through them
            assert not _all_ready(kubectl, namespace), "finished before the restart"
            op.proc.kill()
            op.proc.wait()
            op = start_operator(kube_env, namespace, "--standalone")
        deadline = time.monotonic() + 600
        while not _all_ready(kubectl, namespace):
            assert time.monotonic() < deadline, op.log()[-3000:]
            time.sleep(2)
        took = time.monotonic() - started
        time.sleep(4)  # a resync pass more: nothing may change any more
        return _end_state(kubectl, namespace), took
    finally:
        delete_all_agentdeployments(kubectl, namespace)
        op.stop()


@pytest.mark.timeout(900)
def test_deployments_through_two_operator_restarts_end_as_without(
    berth_crds: None, kubectl: Kubectl, kube_env: dict[str, str]
) -> None:
    """The same AgentDeployments in two namespaces: one operator run straight through,
    one SIGKILLed and restarted twice mid-way. Same objects, same content."""
    names = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for ns in names:
        kubectl("create", "namespace", ns)
    try:
        calm, calm_s = _reconcile_all(kubectl, names[0], kube_env, restarts=0)
        rough, rough_s = _reconcile_all(kubectl, names[1], kube_env, restarts=2)
        print(f"{AGENTS} AgentDeployments Ready: {calm_s:.1f} s straight, {rough_s:.1f} s "
              f"with two SIGKILLs; {len(calm)} child objects")  # fmt: skip
        assert len(calm) >= 3 * AGENTS
        assert rough.keys() == calm.keys()
        differ = [k for k in calm if rough[k] != calm[k]]
        assert differ == [], [(k, calm[k], rough[k]) for k in differ[:2]]
    finally:
        for ns in names:
            kubectl("delete", "namespace", ns, "--wait=false", check=False)
