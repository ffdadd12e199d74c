"""`berth deploy` on the real node: the example agent folder and the example deep-agent
folder are built with buildah on Berth's runtime image, pushed to the node's registry,
deployed and answer through langgraph-sdk; a second deploy is a no-op, a code change rolls
to a new image while the thread stays, `berth delete` removes what deploy made, and a
deployment that cannot start shows the kubelet's reason and the Pod's log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from tests.e2e.access import port_forward
from tests.e2e.conftest import E2E, ROOT
from tests.support import node

pytestmark = pytest.mark.e2e

BERTH = ROOT / ".venv" / "bin" / "berth"
ASK = {"messages": [{"role": "user", "content": "Where is order A-1002?"}]}


def berth(e2e: E2E, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BERTH), *args], env=e2e.cp.env(), capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"berth {' '.join(args)}: {result.returncode}\n{result.stderr}")
    return result


def deploy(e2e: E2E, folder: Path, name: str, namespace: str) -> dict[str, Any]:
    out = berth(
        e2e, "deploy", "-c", str(folder), "--name", name, "-n", namespace,
        "--base-image", e2e.images["berth-runtime"].ref, "--builder", "buildah",
        "--registry", node.REGISTRY, "--insecure-registry", "--timeout", "600", "-o", "json",
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    result["_stderr"] = out.stderr
    return result


def forward(e2e: E2E, namespace: str, service: str) -> contextlib.AbstractContextManager[str]:
    return port_forward(e2e.cp, namespace, f"service/{service}", 8000)


async def ask(url: str, assistant: str, text: str, thread_id: str | None = None) -> Any:
    client = get_client(url=url)
    if thread_id is None:
        thread_id = (await client.threads.create())["thread_id"]
    values = await client.runs.wait(
        thread_id, assistant, input={"messages": [{"role": "user", "content": text}]}
    )
    return thread_id, str(values["messages"][-1]["content"])


def copy(source: str, tmp_path: Path) -> Path:
    folder = tmp_path / source
    shutil.copytree(ROOT / "examples" / source, folder, ignore=shutil.ignore_patterns(".berth"))
    return folder


def test_the_example_agent_deploys_stays_put_rolls_and_is_deleted(e2e: E2E, tmp_path: Path) -> None:
    namespace, name = "berth-deploy", "shop"
    folder = copy("agent", tmp_path)
    first = deploy(e2e, folder, name, namespace)
    assert first["ready"] is True, first
    assert first["image"].startswith(f"{node.REGISTRY}/berth-agent-agent:")
    with forward(e2e, namespace, name) as url:
        thread_id, answer = asyncio.run(ask(url, "agent", "Where is order A-1002?"))
    assert "milk frother" in answer
    # `berth threads` finds it through a port-forward of its own.
    listed = json.loads(berth(e2e, "threads", "--name", name, "-n", namespace, "-o", "json").stdout)
    mine = [t for t in listed if t["thread_id"] == thread_id]
    assert mine and mine[0]["last_run"]["status"] == "success", listed

    second = deploy(e2e, folder, name, namespace)
    assert second["changed"] == [] and second["pruned"] == [] and second["ready"] is True
    assert second["image"] == first["image"]
    assert "is up to date" in second["_stderr"] and "already in the registry" in second["_stderr"]

    source = folder / "agent.py"
    source.write_text(source.read_text().replace('"milk frother"', '"milk steamer"'))
    third = deploy(e2e, folder, name, namespace)
    assert third["changed"] == [f"AgentDeployment/{name}"] and third["ready"] is True
    assert third["image"] != first["image"]
    pods = json.loads(
        e2e.kubectl("-n", namespace, "get", "pods", "-l",
                    f"berth.dev/agentdeployment={name},app.kubernetes.io/component=server",
                    "-o", "json")
    )["items"]  # fmt: skip
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert {p["spec"]["containers"][0]["image"] for p in running} == {third["image"]}
    with forward(e2e, namespace, name) as url:
        _, answer = asyncio.run(ask(url, "agent", "Where is order A-1002?", thread_id))
    assert "milk steamer" in answer  # the new code, on the thread the old code started

    status = json.loads(berth(e2e, "status", "--name", name, "-n", namespace, "-o", "json").stdout)
    assert status[0]["ready"] is True
    logs = berth(e2e, "logs", "server", "--name", name, "-n", namespace, "--tail", "50")
    assert "berth-runtime serve" in logs.stdout or "/ok" in logs.stdout

    deleted = json.loads(berth(e2e, "delete", "--name", name, "-n", namespace, "-o", "json").stdout)
    assert f"AgentDeployment/{name}" in deleted["deleted"]
    assert f"PersistentVolumeClaim/{name}-postgres-data" in deleted["deleted"]
    deadline = time.monotonic() + 180
    while e2e.kubectl("-n", namespace, "get", "pods", "-o", "name").strip():
        assert time.monotonic() < deadline, "Pods left after berth delete"
        time.sleep(2)
    left = e2e.kubectl("-n", namespace, "get", "agentdeployments,configmaps,secrets", "-l",
                       f"berth.dev/project={name}", "-o", "name")  # fmt: skip
    assert left.strip() == ""


def test_the_deep_agent_folder_deploys_and_answers(e2e: E2E, tmp_path: Path) -> None:
    namespace, name = "berth-deep", "concierge"
    folder = copy("deep-agent", tmp_path)
    (folder / ".env").write_text("SHOP_API_KEY=not-in-any-image\n")
    result = deploy(e2e, folder, name, namespace)
    assert result["ready"] is True, result
    assert "not-in-any-image" not in json.dumps(result)
    assert f"AgentCron/{name}-morning-brief" in result["changed"]
    with forward(e2e, namespace, name) as url:
        thread_id, hello = asyncio.run(ask(url, name, "hello"))
        _, hours = asyncio.run(ask(url, name, 'call opening_hours {"day": "friday"}', thread_id))
    assert hello == (
        "concierge: you said 'hello'. Instructions: loaded. Skills: brew-guide, grinder-care."
    )
    assert hours == "concierge: opening_hours: Friday: 9:00-20:00"  # the MCP server in the Pod
    again = deploy(e2e, folder, name, namespace)
    assert again["changed"] == []
    berth(e2e, "delete", "--name", name, "-n", namespace)
    assert "agentdeployment" not in e2e.kubectl("-n", namespace, "get", "agentdeployments",
                                                "-o", "name")  # fmt: skip


def test_a_deployment_that_cannot_start_shows_the_reason_and_the_log(
    e2e: E2E, tmp_path: Path
) -> None:
    folder = copy("agent", tmp_path)
    result = berth(
        e2e, "deploy", "-c", str(folder), "--name", "broken", "-n", "berth-broken",
        "--image", f"{node.REGISTRY}/no-such-image:1", "--timeout", "300", "-o", "json",
        check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)
    assert out["failure"]["reason"] in {"ImagePullBackOff", "ErrImagePull"}, out
    assert out["failure"]["pod"].startswith("broken-server-")
    assert "failed:" in result.stderr and "last lines of Pod" in result.stderr
    berth(e2e, "delete", "--name", "broken", "-n", "berth-broken")
