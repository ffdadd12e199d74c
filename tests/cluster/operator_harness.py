"""Running the Berth operator against the local control plane, for the cluster tests.

The operator runs as a real subprocess (`.venv/bin/berth-operator run`) with the
test kubeconfig, exactly as a user would run it; the tests talk to the API server
with kubectl and the official Python client.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Kubectl

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = str(Path(sys.executable).parent / "berth-operator")
AGD = "agentdeployment"


class OperatorProcess:
    """One `berth-operator run` subprocess with its log in a file."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="berth-operator-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [OPERATOR, "run", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, needle: str) -> int:
        return self.log().count(needle)

    def wait_for_log(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited ({self.proc.returncode}):\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not in the operator log after {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start_operator(env: dict[str, str], namespace: str, *extra: str) -> OperatorProcess:
    op = OperatorProcess(env, "--namespace", namespace, "--resync-seconds", "3", *extra)
    op.wait_for_log("Initial authentication has finished", timeout=30)
    return op


@pytest.fixture(scope="session")
def berth_crds(kubectl: Kubectl) -> None:
    """The generated CRDs (AgentDeployment and kopf peering), installed once."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/agentdeployments.berth.dev",
        "crd/kopfpeerings.kopf.dev",
        "--timeout=30s",
    )


def delete_all(kubectl: Kubectl, namespace: str, kinds: str) -> None:
    """Delete every object of ``kinds`` (comma-separated) while an operator still runs to
    release its finalizers; whatever is left is released by hand so the namespace can go."""
    kubectl("delete", kinds, "--all", "-n", namespace, "--timeout=30s", check=False)
    for name in kubectl("get", kinds, "-n", namespace, "-o", "name", check=False).stdout.split():
        kubectl(
            "patch",
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )


def delete_all_agentdeployments(kubectl: Kubectl, namespace: str) -> None:
    """Delete every AgentDeployment while an operator still runs to release the finalizer."""
    delete_all(kubectl, namespace, AGD)


@pytest.fixture
def operator(
    berth_crds: None, kube_env: dict[str, str], kubectl: Kubectl, namespace: str
) -> Iterator[OperatorProcess]:
    """The operator watching the test namespace (resync every 3 s)."""
    op = start_operator(kube_env, namespace)
    try:
        yield op
    finally:
        delete_all_agentdeployments(kubectl, namespace)
        op.stop()


def apply(kubectl: Kubectl, namespace: str, *docs: dict[str, Any]) -> None:
    text = "\n---\n".join(yaml.safe_dump(d) for d in docs)
    kubectl("apply", "-n", namespace, "-f", "-", input=text)


def get(kubectl: Kubectl, namespace: str, *what: str) -> dict[str, Any]:
    out = kubectl("get", *what, "-n", namespace, "-o", "json").stdout
    data: dict[str, Any] = json.loads(out)
    return data


def exists(kubectl: Kubectl, namespace: str, kind: str, name: str) -> bool:
    result = kubectl(
        "get", kind, name, "-n", namespace, "--ignore-not-found", "-o", "name", check=False
    )
    return bool(result.stdout.strip())


def wait_ready(kubectl: Kubectl, namespace: str, name: str, timeout: int = 60) -> None:
    result = kubectl(
        "wait",
        "--for=condition=Ready",
        f"{AGD}/{name}",
        "-n",
        namespace,
        f"--timeout={timeout}s",
        check=False,
    )
    if result.returncode != 0:
        status = kubectl("get", AGD, name, "-n", namespace, "-o", "yaml", check=False).stdout
        raise AssertionError(f"{name} not Ready after {timeout}s:\n{result.stderr}\n{status}")


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (body.get("status") or {}).get("conditions") or ():
        if c["type"] == kind:
            return dict(c)
    return {}


def wait_until(pred: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def external_secrets(kubectl: Kubectl, namespace: str) -> None:
    """Secrets an external-stores AgentDeployment points at (no bundled Pods to wait for)."""
    apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "pg"},
            "stringData": {"uri": "postgresql://berth:pw@db.example:5432/berth"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "rd"},
            "stringData": {"uri": "redis://cache.example:6379/0"},
        },
    )


def agent(name: str, *, external: bool = True, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image": "ghcr.io/berth-dev/berth-runtime:dev",
        "graphs": {"inline": {"graphs": {"agent": "/app/agent.py:graph"}}},
    }
    if external:
        body["postgres"] = {"external": {"secretName": "pg"}}
        body["redis"] = {"external": {"secretName": "rd"}}
    body.update(spec)
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "AgentDeployment",
        "metadata": {"name": name},
        "spec": body,
    }


def bind_volume(kubectl: Kubectl, namespace: str, claim: str) -> str:
    """A hostPath PersistentVolume pre-bound to ``claim`` (there is no provisioner here)."""
    name = f"pv-{uuid.uuid4().hex[:10]}"
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"berth-test": namespace}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"/tmp/{name}"},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(pv))
    return name


@pytest.fixture
def volumes(kubectl: Kubectl, namespace: str) -> Iterator[Callable[[str], str]]:
    """``volumes(claim)`` binds a fresh hostPath PV to a claim; all are deleted afterwards."""
    made: list[str] = []

    def make(claim: str) -> str:
        made.append(bind_volume(kubectl, namespace, claim))
        return made[-1]

    yield make
    if made:
        kubectl("delete", "pv", *made, "--wait=false", check=False)


def resource_versions(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    kinds = (
        "agentdeployments,deployments,statefulsets,services,configmaps,secrets,serviceaccounts,"
        "poddisruptionbudgets,horizontalpodautoscalers,persistentvolumeclaims"
    )
    items = get(kubectl, namespace, kinds)["items"]
    return {
        f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"]
        for i in items
        if i["metadata"]["name"] != "kube-root-ca.crt"
    }


__all__ = [
    "AGD",
    "OperatorProcess",
    "agent",
    "apply",
    "berth_crds",
    "bind_volume",
    "condition",
    "delete_all",
    "delete_all_agentdeployments",
    "exists",
    "external_secrets",
    "get",
    "operator",
    "resource_versions",
    "start_operator",
    "volumes",
    "wait_ready",
    "wait_until",
]
