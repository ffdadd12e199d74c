"""The e2e tier: Berth's images on a real node, installed with `helm install`.

One session-wide cluster: the control plane, the real node (tests/support/node.py),
a local OCI registry (crane) on the host's end of the node's link, every image pushed
to it, and the chart installed with `global.imageRegistry` pointing there. If any
part cannot start, the tests fail with the reason; nothing is skipped.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.access import example_manifest
from tests.support import images, node
from tests.support.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / ".venv" / "bin" / "helm"
RELEASE, OPERATOR_NS = "berth", "berth-system"


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
        result = subprocess.run(
            [str(HELM), *args], env=self.cp.env(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)}: {result.stderr}")
        return result.stdout

    def image(self, name: str) -> str:
        """The reference Pods use to pull `name` from the node's registry."""
        return f"{node.REGISTRY}/{name}:{self.images[name].tag}"


def chart_values(built: dict[str, images.ImageInfo]) -> dict[str, Any]:
    """Every image from the local registry, set with one registry value plus the tags."""

    def ref(name: str) -> dict[str, str]:
        return {"repository": name, "tag": built[name].tag}

    return {
        "global": {"imageRegistry": node.REGISTRY},
        "image": ref("berth-operator"),
        "images": {
            "runtime": ref("berth-runtime"),
            "sandboxAgent": ref("berth-sandbox-agent"),
            "netinit": ref("berth-sandbox-netinit"),
            # Debian-built images honouring the official images' environment contract.
            "postgres": ref("berth-test-postgres"),
            "redis": ref("berth-test-redis"),
        },
    }


def serve_registry(logfile: Path) -> subprocess.Popen[bytes]:
    """crane's registry on the host's end of the node's link; its log goes to a file (a
    pipe nobody reads would fill and stall it)."""
    argv = [images.crane_binary(), "registry", "serve", "--address", node.REGISTRY]
    with logfile.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    node.wait_for(lambda: _answers(f"http://{node.REGISTRY}/v2/"), 30, "the registry")
    return proc


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    built = images.build_images()
    running = node.up()
    registry = None
    try:
        registry = serve_registry(running.state / "registry.log")
        images.push(built, node.REGISTRY, insecure=True)
        cluster = E2E(node=running, images=built, values=chart_values(built))
        values_file = tmp_path_factory.mktemp("helm") / "values.yaml"
        values_file.write_text(yaml.safe_dump(cluster.values))
        cluster.helm(
            "install", RELEASE, str(ROOT / "charts" / "berth"),
            "--namespace", OPERATOR_NS, "--create-namespace",
            "-f", str(values_file), "--wait", "--timeout", "180s",
        )  # fmt: skip
        yield cluster
    finally:
        if registry is not None:
            registry.kill()
            registry.wait()
        node.down()
        left = node.leftovers()
        assert not left, f"the node left things on the host: {left}"


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
