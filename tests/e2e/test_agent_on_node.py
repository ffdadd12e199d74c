"""Berth for real: the chart's operator Pod and the example AgentDeployment's Pods run
from Berth's images on a real kubelet node, and a `langgraph-sdk` conversation through
the Service gets answers computed in the runtime Pod. Each test asserts on what only
the real containers produce (the agent's answer, rows that outlived a Postgres Pod)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import yaml
from langgraph_sdk import get_client

from tests.e2e.access import example_manifest, port_forward
from tests.e2e.conftest import E2E, OPERATOR_NS

pytestmark = pytest.mark.e2e

REFUND: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Please refund order A-1002, it is broken"}]
}


def test_operator_runs_from_its_image(e2e: E2E) -> None:
    pod = json.loads(
        e2e.kubectl(
            "-n",
            OPERATOR_NS,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=berth-operator",
            "-o",
            "json",
        )
    )["items"][0]
    container = pod["spec"]["containers"][0]
    assert container["image"] == e2e.image("berth-operator")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] and status["restartCount"] == 0
    assert pod["spec"]["nodeName"] == "berth-node"
    # The liveness probe reached the operator inside the container, and it won peering.
    # The probe starts after its initial delay: wait for the kubelet's first call.
    deadline = time.monotonic() + 90
    logs = ""
    while "kube-probe" not in logs and time.monotonic() < deadline:
        time.sleep(2)
        logs = e2e.kubectl("-n", OPERATOR_NS, "logs", pod["metadata"]["name"])
    assert "kube-probe" in logs, logs[-2000:]
    # The CRDs came with the chart.
    crds = e2e.kubectl("get", "crd", "-o", "name")
    assert "agentdeployments.berth.dev" in crds and "sandboxpools.berth.dev" in crds


async def converse(url: str) -> tuple[str, list[dict[str, Any]]]:
    client = get_client(url=url)
    thread_id = (await client.threads.create())["thread_id"]
    updates = [
        c.data
        async for c in client.runs.stream(thread_id, "agent", input=REFUND, stream_mode="updates")
        if c.event == "updates"
    ]
    paused = [u["__interrupt__"] for u in updates if "__interrupt__" in u]
    assert paused and paused[0][0]["value"]["tool"] == "issue_refund", updates
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    final = await client.runs.wait(thread_id, "agent", command={"resume": {"approved": True}})
    assert isinstance(final, dict)
    return thread_id, final["messages"]


def test_conversation_answered_by_the_runtime_pod(e2e: E2E, example: str) -> None:
    pods = e2e.kubectl("-n", example, "get", "pods", "-o", "wide")
    assert "berth-node" in pods
    with port_forward(e2e.cp, example, "svc/example", 8000) as url:
        _thread_id, messages = asyncio.run(converse(url))
    # The refund tool ran in the worker Pod, after approval, exactly once, and the
    # agent's answer carries what it computed.
    refunds = [m for m in messages if m.get("name") == "issue_refund"]
    assert len(refunds) == 1 and refunds[0]["type"] == "tool", messages
    assert "Refund RF-A-1002 issued: $45.50" in messages[-1]["content"]


def test_thread_survives_postgres_pod_restart(e2e: E2E, example: str) -> None:
    with port_forward(e2e.cp, example, "svc/example", 8000) as url:
        thread_id, messages = asyncio.run(converse(url))
    before = len(messages)
    e2e.kubectl("-n", example, "delete", "pod", "example-postgres-0", "--wait=true")
    e2e.kubectl(
        "-n", example, "wait", "--for=condition=Ready", "pod/example-postgres-0", "--timeout=180s"
    )  # fmt: skip

    async def read_back(url: str) -> dict[str, Any]:
        client = get_client(url=url)
        deadline = time.monotonic() + 60
        while True:  # the runtime's pool reconnects to the new Postgres Pod
            try:
                return dict(await client.threads.get_state(thread_id))
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)

    with port_forward(e2e.cp, example, "svc/example", 8000) as url:
        state = asyncio.run(read_back(url))
    assert len(state["values"]["messages"]) == before
    assert state["checkpoint"]["thread_id"] == thread_id


def test_wrong_image_stalls_with_the_kubelets_reason(e2e: E2E) -> None:
    namespace = "bad-image"
    e2e.kubectl("create", "namespace", namespace)
    doc = yaml.safe_load(example_manifest(namespace))
    doc["metadata"]["name"] = "broken"
    doc["spec"]["image"] = "10.250.0.1:5000/no-such-image:1"
    e2e.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    e2e.kubectl(
        "-n", namespace, "wait", "--for=condition=Stalled", "agentdeployment/broken",
        "--timeout=180s",
    )  # fmt: skip
    conditions = json.loads(
        e2e.kubectl(
            "-n",
            namespace,
            "get",
            "agentdeployment",
            "broken",
            "-o",
            "jsonpath={.status.conditions}",
        )
    )
    stalled = next(c for c in conditions if c["type"] == "Stalled")
    ready = next(c for c in conditions if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert stalled["status"] == "True", conditions
    assert stalled["reason"] in {"ImagePullBackOff", "ErrImagePull"}, stalled
    assert "no-such-image" in stalled["message"]
