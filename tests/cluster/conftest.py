"""Fixtures of the cluster tier: one real local control plane per session, a
fresh namespace per test, and kubectl bound to that control plane."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator

import kubernetes
import pytest

from tests.support.controlplane import ControlPlane, start, stop

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    cp = start()
    try:
        yield cp
    finally:
        stop(cp)


@pytest.fixture(scope="session")
def kube_env(control_plane: ControlPlane) -> dict[str, str]:
    """Environment for subprocesses (operator, kubectl, helm) that target the control plane."""
    return control_plane.env()


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    """Run kubectl against the control plane: kubectl("get", "pods", "-n", ns)."""

    def run(
        *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = control_plane.kubectl(*args, check=False, input=input)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def api_client(control_plane: ControlPlane) -> Iterator[kubernetes.client.ApiClient]:
    """The official Kubernetes Python client, configured from the test kubeconfig."""
    client = kubernetes.config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    try:
        yield client
    finally:
        client.close()
