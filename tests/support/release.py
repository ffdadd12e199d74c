"""Berth installed for real on this machine: images built, the real node up, a local OCI
registry on the host's end of the node's link, every image pushed there, and the chart
installed with `helm install` pointing at it with one value (`global.imageRegistry`).

Used by the e2e tier (tests/e2e/conftest.py), `make demo` and bench/e2e_startup.py.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import images, node
from tests.support.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / ".venv" / "bin" / "helm"
CHART = ROOT / "charts" / "berth"
RELEASE, OPERATOR_NS = "berth", "berth-system"


def log(msg: str) -> None:
    print(f">> {msg}", flush=True)


def chart_values(built: dict[str, images.ImageInfo]) -> dict[str, Any]:
    """Every image from the node's registry (see `images.chart_values`)."""
    return images.chart_values(built, node.REGISTRY)


def serve_registry(logfile: Path) -> subprocess.Popen[bytes]:
    """crane's registry on the host's end of the node's link; its log goes to a file (a
    pipe nobody reads would fill and stall it). It joins the node's cgroup, so `node.down()`
    stops it with the node even when whoever started it is gone (`make node-install`)."""
    argv = [images.crane_binary(), "registry", "serve", "--address", node.REGISTRY]
    with logfile.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    node.join_cgroup(proc.pid)
    node.wait_for(lambda: _answers(f"http://{node.REGISTRY}/v2/"), 30, "the registry")
    return proc


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def helm(cp: ControlPlane, *args: str) -> str:
    result = subprocess.run([str(HELM), *args], env=cp.env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {result.stderr}")
    return result.stdout


def install_chart(cp: ControlPlane, values: dict[str, Any], timeout: str = "180s") -> None:
    """`helm install` of the chart, waiting for the operator to be Ready."""
    with tempfile.TemporaryDirectory() as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        helm(
            cp, "install", RELEASE, str(CHART),
            "--namespace", OPERATOR_NS, "--create-namespace",
            "-f", str(values_file), "--wait", "--timeout", timeout,
        )  # fmt: skip


@dataclass
class Installed:
    """The node, the images built and pushed, and the chart values they were installed with."""

    node: node.Node
    images: dict[str, images.ImageInfo]
    values: dict[str, Any]
    seconds: dict[str, float]


def install() -> Installed:
    """Images, node, registry, push, `helm install`; left running (`node.down()` stops all)."""
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    log("images: building Berth's images (cached by source hash)")
    built = images.build_images()
    seconds["images"] = time.monotonic() - t0
    t0 = time.monotonic()
    running = node.up()
    seconds["node"] = time.monotonic() - t0
    try:
        t0 = time.monotonic()
        serve_registry(running.state / "registry.log")
        images.push(built, node.REGISTRY, insecure=True)
        seconds["push"] = time.monotonic() - t0
        values = chart_values(built)
        t0 = time.monotonic()
        log(f"helm install {RELEASE} charts/berth (global.imageRegistry={node.REGISTRY})")
        install_chart(running.cp, values)
        seconds["helm_install"] = time.monotonic() - t0
    except BaseException:
        node.down()
        raise
    return Installed(node=running, images=built, values=values, seconds=seconds)


@contextlib.contextmanager
def installed() -> Iterator[Installed]:
    """`install()`, torn down after; the host is checked for leftovers."""
    done = install()
    try:
        yield done
    finally:
        node.down()
        left = node.leftovers()
        assert not left, f"the node left things on the host: {left}"


def _cli(argv: list[str]) -> int:
    if argv != ["up"]:
        print("usage: python -m tests.support.release up   (stop: make node-down)", file=sys.stderr)
        return 2
    done = install()
    phases = ", ".join(f"{k} {v:.0f}s" for k, v in done.seconds.items())
    log(f"Berth installed on the real node ({phases}); registry {node.REGISTRY}")
    print(f"export KUBECONFIG={done.node.cp.kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
