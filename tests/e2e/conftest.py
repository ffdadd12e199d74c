"""The e2e tier: Berth's images on a real node, installed with `helm install`.

One session-wide cluster (tests/support/release.py): the control plane, the real node
(tests/support/node.py), a local OCI registry (crane) on the host's end of the node's link,
every image pushed to it, and the chart installed with `global.imageRegistry` pointing
there. If any part cannot start, the tests fail with the reason; nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.access import example_manifest
from tests.support import images, node, release
from tests.support.controlplane import ControlPlane
from tests.support.release import OPERATOR_NS, RELEASE, ROOT

__all__ = ["E2E", "OPERATOR_NS", "RELEASE", "ROOT"]


@dataclass
class E2E:
    """The running e2e cluster as tests see it."""

    node: node.Node
    images: dict[str, images.ImageInfo]
    values: dict[str, Any]

    @property
    def cp(self) -> ControlPlane:
        return self.node.cp

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        result = self.cp.kubectl(*args, check=False, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result.stdout

    def helm(self, *args: str) -> str:
        return release.helm(self.cp, *args)

    def image(self, name: str) -> str:
        """The reference Pods use to pull `name` from the node's registry."""
        return f"{node.REGISTRY}/{name}:{self.images[name].tag}"


@pytest.fixture(scope="session")
def e2e() -> Iterator[E2E]:
    with release.installed() as done:
        yield E2E(node=done.node, images=done.images, values=done.values)


EXAMPLE_NAMESPACE = "agents"


@pytest.fixture(scope="session")
def example(e2e: E2E) -> str:
    """examples/agentdeployment.yaml applied in its own namespace and Ready; its namespace."""
    namespace = EXAMPLE_NAMESPACE
    e2e.kubectl("create", "namespace", namespace)
    e2e.kubectl("apply", "-f", "-", input=example_manifest(namespace))
    try:
        e2e.kubectl(
            "-n", namespace, "wait", "--for=condition=Ready", "agentdeployment/example",
            "--timeout=300s",
        )  # fmt: skip
    except AssertionError:
        print(e2e.kubectl("-n", namespace, "get", "pods,agentdeployment", "-o", "wide"))
        raise
    return namespace
