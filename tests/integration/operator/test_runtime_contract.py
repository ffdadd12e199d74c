"""The Pods the operator renders really start the runtime: the rendered container command,
arguments and environment (Secrets resolved as the kubelet would), run as a process on real
Postgres and Redis, answer the rendered readiness probe, and serve the example agent to
langgraph-sdk."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from berth_operator.api.agentdeployment import parse_spec
from berth_operator.render.desired import Observed, render
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import Subject
from berth_operator.render.runtime import CONFIG_PATH
from langgraph_sdk import get_client

from tests.support.servers import Server, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
AGENT = ROOT / "examples" / "agent" / "agent.py"
BIN = Path(sys.executable).parent


def _secret(**data: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def _resolve_env(
    env: list[dict[str, Any]], secrets: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """What the kubelet does with ``value``, ``valueFrom.secretKeyRef`` and the downward API
    (``fieldRef``; these Pods run outside a cluster, in namespace "default" say)."""
    out = {}
    for e in env:
        if "value" in e:
            out[e["name"]] = e["value"]
        elif "fieldRef" in e["valueFrom"]:
            out[e["name"]] = {"metadata.namespace": "default"}[
                e["valueFrom"]["fieldRef"]["fieldPath"]
            ]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            out[e["name"]] = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
    return out


def _rendered_pods(
    database_uri: str, redis_uri: str, port: int, workers: bool
) -> list[dict[str, Any]]:
    spec = parse_spec(
        {
            "image": "berth-runtime:dev",
            "graphs": {"inline": {"graphs": {"agent": f"{AGENT}:graph"}}},
            "env": [{"name": "AGENT_MODEL_PROVIDER", "value": "fake"}],
            "server": {"port": port},
            "workers": {"enabled": workers, "jobsPerWorker": 2},
            "postgres": {"external": {"secretName": "pg"}},
            "redis": {"external": {"secretName": "rd"}},
        }
    )
    secrets = {"pg": _secret(uri=database_uri), "rd": _secret(uri=redis_uri)}
    desired = render(
        Subject(name="agent", namespace="ns", uid="u"),
        spec,
        Observed(postgres_secret=secrets["pg"], redis_secret=secrets["rd"]),
        {},
        ImageDefaults(),
    )
    config = next(o for o in desired.objects if o["kind"] == "ConfigMap")["data"]["langgraph.json"]
    pods = []
    for obj in desired.objects:
        if obj["kind"] == "Deployment":
            (container,) = obj["spec"]["template"]["spec"]["containers"]
            pods.append(
                {
                    "container": container,
                    "env": _resolve_env(container["env"], secrets),
                    "config": config,
                }
            )
    return pods


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def _start(
    pod: dict[str, Any], tmp_path: Path, port: int, procs: list[subprocess.Popen[bytes]]
) -> None:
    c = pod["container"]
    config = tmp_path / f"{port}-langgraph.json"  # the ConfigMap volume, mounted elsewhere
    config.write_text(pod["config"])
    args = [str(config) if a == CONFIG_PATH else a for a in c["args"]]
    env = {**os.environ, **pod["env"], "PORT": str(port), "HOST": "127.0.0.1"}
    log = (tmp_path / f"{port}.log").open("wb")
    procs.append(
        subprocess.Popen(
            [str(BIN / c["command"][0]), *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    )


def _wait_probe(
    container: dict[str, Any], port: int, proc: subprocess.Popen[bytes], log: Path
) -> None:
    path = container["readinessProbe"]["httpGet"]["path"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"runtime exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} not OK after 60 s:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("workers", [False, True], ids=["combined", "split"])
async def test_rendered_runtime_pods_serve_the_agent(
    database_uri: str,
    redis: Server,
    tmp_path: Path,
    pods: list[subprocess.Popen[bytes]],
    workers: bool,
) -> None:
    api_port = free_port()
    rendered = _rendered_pods(database_uri, redis.uri, api_port, workers)
    assert [p["container"]["args"][0] for p in rendered] == (
        ["api", "worker"] if workers else ["serve"]
    )
    for i, pod in enumerate(rendered):
        port = api_port if i == 0 else free_port()  # a worker's PORT only serves its probes
        assert pod["env"]["PORT"] == str(api_port)
        _start(pod, tmp_path, port, pods)
        _wait_probe(pod["container"], port, pods[-1], tmp_path / f"{port}.log")

    client = get_client(url=f"http://127.0.0.1:{api_port}")
    thread = await client.threads.create()
    run = await client.runs.wait(
        thread["thread_id"],
        "agent",
        input={"messages": [{"role": "user", "content": "What is 12 * (3 + 4)?"}]},
    )
    assert isinstance(run, dict) and run["messages"][-1]["type"] == "ai"
    assert "84" in str(run["messages"][-1]["content"])
