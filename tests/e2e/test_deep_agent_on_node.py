"""The deep-agent path end to end in Pods: an AgentDeployment (the runtime image) serves the
example deep agent (examples/agent/deep_agent.py: `create_deep_agent` on Berth's sandbox
backend, driven by a deterministic offline model) with `spec.sandbox` on a SandboxPool of
the berth-test-curl image. A `langgraph-sdk` run through the Service makes the runtime
claim a sandbox for the thread; the executor in the claimed Pod runs `execute` and the file
tools (the pool's managed NetworkPolicy, enforced on the node by kube-router, lets only
this deployment's runtime Pods reach it). The results land in the thread; the claim is
released after its TTL; a pool that does not exist fails the run with the claim's reason.

Each assertion is on what only the real sandbox produces: arithmetic done by the Pod's
shell, the Pod's own hostname, the file on the Pod's disk (`kubectl exec`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from langgraph_sdk import get_client

from tests.e2e.access import pods, port_forward
from tests.e2e.conftest import E2E
from tests.support.controlplane import kubectl_binary

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

NS = "deep-agents"
POOL = "box"
DEPLOYMENT = "deep"
GRAPH = "deep"
TTL_SECONDS = 20
READY_TIMEOUT_SECONDS = 20
WORKDIR = "/work"
NOTES = "alpha\ngamma\n"
PSA = {
    "pod-security.kubernetes.io/enforce": "privileged",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}
THREAD_LABEL = "berth.dev/thread-id"


def pool_manifest(e2e: E2E) -> dict[str, Any]:
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "SandboxPool",
        "metadata": {"name": POOL, "namespace": NS},
        "spec": {
            "replicas": 1,
            "maxSize": 3,
            "template": {
                "image": e2e.image("berth-test-curl"),
                "command": ["sleep", "infinity"],
                "workingDir": WORKDIR,
                "securityContext": {"readOnlyRootFilesystem": True},
                "volumes": [
                    {"name": "work", "emptyDir": {"sizeLimit": "64Mi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                ],
                "volumeMounts": [
                    {"name": "work", "mountPath": WORKDIR},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            },
            "networkPolicy": {"allowedDeployments": [DEPLOYMENT]},
        },
    }


def deployment_manifest() -> dict[str, Any]:
    """The operator's default runtime image (from the node's registry) serving the example
    deep agent baked into /app, claiming from the pool; the server Pod runs the runs."""
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "AgentDeployment",
        "metadata": {"name": DEPLOYMENT, "namespace": NS},
        "spec": {
            "graphs": {
                "inline": {"dependencies": ["."], "graphs": {GRAPH: "/app/deep_agent.py:graph"}}
            },
            "server": {"replicas": 1},
            "workers": {"enabled": False},
            "postgres": {"bundled": {"storage": {"size": "1Gi", "keepOnDelete": False}}},
            "redis": {"bundled": {}},
            "sandbox": {
                "pool": POOL,
                "scope": "Thread",
                "ttlSeconds": TTL_SECONDS,
                "readyTimeoutSeconds": READY_TIMEOUT_SECONDS,
            },
        },
    }


@pytest.fixture(scope="module")
def deep(e2e: E2E) -> Iterator[E2E]:
    """The namespace with the pool Ready and the AgentDeployment Ready."""
    e2e.kubectl("create", "namespace", NS)
    e2e.kubectl("label", "namespace", NS, *(f"{k}={v}" for k, v in PSA.items()))
    started = time.monotonic()
    e2e.kubectl(
        "apply", "-f", "-", input=yaml.safe_dump_all([pool_manifest(e2e), deployment_manifest()])
    )
    try:
        e2e.kubectl(
            "-n", NS, "wait", "--for=condition=Ready", f"sandboxpool/{POOL}", "--timeout=240s"
        )
        e2e.kubectl(
            "-n", NS, "wait", "--for=condition=Ready", f"agentdeployment/{DEPLOYMENT}",
            "--timeout=300s",
        )  # fmt: skip
    except AssertionError:
        print(e2e.kubectl("-n", NS, "get", "pods,sandboxpools,agentdeployments", "-o", "wide"))
        print(e2e.kubectl("-n", NS, "describe", "pods", check=False))
        raise
    print(f"pool and AgentDeployment Ready {time.monotonic() - started:.1f} s after apply")
    yield e2e
    e2e.kubectl("delete", "namespace", NS, "--wait=false", check=False)


class ClaimWatcher:
    """`kubectl get sandboxclaims --watch` in the background: when the run's claim is first
    seen (created) and first seen Ready, on the test's clock."""

    def __init__(self, e2e: E2E) -> None:
        self.seen: float | None = None
        self.ready: float | None = None
        self._proc = subprocess.Popen(
            [kubectl_binary(), "-n", NS, "get", "sandboxclaims", "--watch",
             "--output-watch-events", "-o", "json"],
            env=e2e.cp.env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> ClaimWatcher:
        self._thread.start()
        time.sleep(1)  # the watch is established before the run starts
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        self._proc.wait()
        self._thread.join()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:  # one event per line: {"type": ..., "object": ...}
            now = time.monotonic()
            if not line.strip():
                continue
            event = json.loads(line)
            if event.get("type") not in {"ADDED", "MODIFIED"}:
                continue
            if self.seen is None:
                self.seen = now
            ready = _condition(event["object"], "Ready").get("status") == "True"
            if ready and self.ready is None:
                self.ready = now


def _claims(e2e: E2E, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["-n", NS, "get", "sandboxclaims", "-o", "json"]
    if selector:
        args += ["-l", selector]
    items: list[dict[str, Any]] = json.loads(e2e.kubectl(*args))["items"]
    return items


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind:
            return dict(c)
    return {}


def _tool_messages(update: Any) -> list[dict[str, Any]]:
    """The tool results in one `updates` event (a node's update may be a list)."""
    found: list[dict[str, Any]] = []
    if isinstance(update, dict):
        if update.get("type") == "tool":
            return [update]
        for v in update.values():
            found += _tool_messages(v)
    elif isinstance(update, list):
        for v in update:
            found += _tool_messages(v)
    return found


@dataclass
class Ran:
    thread_id: str
    run_id: str
    status: str
    values: dict[str, Any]
    messages: list[dict[str, Any]]
    started: float
    first_execute: float
    ended: float
    claim_seen: float | None
    claim_ready: float | None
    tool_results: list[dict[str, Any]] = field(default_factory=list)


async def _run_deep(url: str, watcher: ClaimWatcher) -> Ran:
    client = get_client(url=url, timeout=300)
    thread_id = (await client.threads.create())["thread_id"]
    started = time.monotonic()
    first_execute: float | None = None
    run_id = ""
    results: list[dict[str, Any]] = []
    async for chunk in client.runs.stream(
        thread_id,
        GRAPH,
        input={"messages": [{"role": "human", "content": f"workdir: {WORKDIR}"}]},
        stream_mode="updates",
    ):
        if chunk.event == "metadata":
            run_id = chunk.data["run_id"]
        elif chunk.event == "updates":
            for m in _tool_messages(chunk.data):
                results.append(m)
                if m.get("name") == "execute" and first_execute is None:
                    first_execute = time.monotonic()
        elif chunk.event == "error":
            raise AssertionError(f"run failed: {chunk.data}")
    ended = time.monotonic()
    assert run_id and first_execute is not None, results
    values = await client.runs.join(thread_id, run_id)
    run = await client.runs.get(thread_id, run_id)
    state = await client.threads.get_state(thread_id)
    return Ran(
        thread_id=thread_id,
        run_id=run_id,
        status=run["status"],
        values=dict(values),
        messages=list(state["values"]["messages"]),
        started=started,
        first_execute=first_execute,
        ended=ended,
        claim_seen=watcher.seen,
        claim_ready=watcher.ready,
        tool_results=results,
    )


@pytest.fixture(scope="module")
def ran(deep: E2E) -> Ran:
    """One run of the deep agent on a new thread, through the Service."""
    with (
        ClaimWatcher(deep) as watcher,
        port_forward(deep.cp, NS, f"svc/{DEPLOYMENT}", 8000) as url,
    ):
        try:
            result = asyncio.run(_run_deep(url, watcher))
        except BaseException:
            print(deep.kubectl("-n", NS, "get", "pods,sandboxclaims", "-o", "wide"))
            server = pods(deep.cp, NS, f"berth.dev/agentdeployment={DEPLOYMENT}")
            for p in server:
                name = p["metadata"]["name"]
                print(deep.kubectl("-n", NS, "logs", name, "--tail=80", check=False))
            raise
    run_s = result.ended - result.started
    print(f"deep agent run {run_s:.2f} s (8 tool calls); run start -> first execute result "
          f"{result.first_execute - result.started:.2f} s")  # fmt: skip
    if result.claim_seen is not None:
        ready = f"{result.claim_ready - result.claim_seen:.2f}" if result.claim_ready else "?"
        print(
            f"claim seen -> Ready {ready} s; claim seen -> first execute result "
            f"{result.first_execute - result.claim_seen:.2f} s"
        )
    return result


def _the_claim(e2e: E2E, thread_id: str) -> dict[str, Any]:
    items = _claims(e2e, f"{THREAD_LABEL}={thread_id}")
    assert len(items) == 1, items
    return items[0]


def test_tools_run_in_the_claimed_sandbox_pod(ran: Ran, deep: E2E) -> None:
    assert ran.status == "success", ran.values
    assert "__error__" not in ran.values, ran.values
    # The runtime claimed a sandbox for this thread from the pool, bound to a warm Pod.
    claim = _the_claim(deep, ran.thread_id)
    spec, status = claim["spec"], claim["status"]
    assert spec["threadId"] == ran.thread_id
    assert spec["poolRef"]["name"] == POOL
    assert spec["deploymentRef"]["name"] == DEPLOYMENT
    assert len(spec["executorTokenSHA256"]) == 64
    ready = _condition(claim, "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Bound", claim["status"]
    assert status["launchType"] == "warm", status
    pod_name = status["podName"]
    pod = json.loads(deep.kubectl("-n", NS, "get", "pod", pod_name, "-o", "json"))
    labels = pod["metadata"]["labels"]
    assert labels["berth.dev/from-pool"] == POOL
    assert labels["berth.dev/claim"] == claim["metadata"]["name"]
    assert labels[THREAD_LABEL] == ran.thread_id
    assert pod["status"]["podIP"] == status["podIP"]

    # Every tool ran, in the agent's order, and its result is in the thread.
    tools = [m for m in ran.messages if m.get("type") == "tool"]
    names = [m["name"] for m in tools]
    assert names == [
        "execute", "write_file", "edit_file", "read_file", "ls", "glob", "grep", "execute",
    ], names  # fmt: skip
    # Streamed as they happened (the three concurrent tools in the order they finished).
    assert sorted(m["name"] for m in ran.tool_results) == sorted(names)
    assert all(m.get("status", "success") == "success" for m in tools), tools
    # The first command ran in the claimed Pod: its shell did the arithmetic, its hostname
    # is the Pod's name, as the pool's non-root user in the pool's working directory.
    probe = tools[0]["content"]
    assert "sum=42" in probe, probe
    assert f"host={pod_name}" in probe, probe
    assert "uid=1000" in probe and f"pwd={WORKDIR}" in probe, probe
    # The file tools worked on the Pod's disk: the file is there, as edited.
    on_disk = deep.kubectl(
        "-n", NS, "exec", pod_name, "-c", "sandbox", "--", "cat", f"{WORKDIR}/notes.txt"
    )
    assert on_disk == NOTES
    read = tools[3]["content"]
    assert "gamma" in read and "beta" not in read, read
    assert "notes.txt" in tools[4]["content"] and "notes.txt" in tools[5]["content"]
    assert "gamma" in tools[6]["content"], tools[6]
    digest = hashlib.sha256(NOTES.encode()).hexdigest()
    last = tools[7]["content"]
    assert last.startswith("2\n") and digest in last, last
    # The agent answered from the sandbox's output.
    final = ran.messages[-1]
    assert final["type"] == "ai" and not final.get("tool_calls"), final
    assert "sum=42" in final["content"] and f"host={pod_name}" in final["content"]
    assert ran.values["messages"][-1]["content"] == final["content"]


def test_claim_released_after_its_ttl(ran: Ran, deep: E2E) -> None:
    """No tool call for ttlSeconds: the runtime deletes the claim, the sandbox Pod goes,
    and the pool keeps its warm Pod."""
    claim = _the_claim(deep, ran.thread_id)
    pod_name = claim["status"]["podName"]
    # Not released early: with the TTL not yet over, the claim and its Pod are still there.
    quiet = time.monotonic() - ran.ended
    if quiet < TTL_SECONDS - 5:
        assert _claims(deep, f"{THREAD_LABEL}={ran.thread_id}"), "released before its TTL"
        assert pods(deep.cp, NS, f"berth.dev/claim={claim['metadata']['name']}")
    deadline = ran.ended + TTL_SECONDS + TTL_SECONDS / 4 + 60
    while _claims(deep, f"{THREAD_LABEL}={ran.thread_id}"):
        assert time.monotonic() < deadline, deep.kubectl("-n", NS, "get", "sandboxclaims")
        time.sleep(0.5)
    released = time.monotonic() - ran.ended
    while deep.cp.kubectl("-n", NS, "get", "pod", pod_name, check=False).returncode == 0:
        pod = json.loads(deep.kubectl("-n", NS, "get", "pod", pod_name, "-o", "json"))
        if pod["metadata"].get("deletionTimestamp"):
            break
        assert time.monotonic() < deadline + 60, pod["metadata"]
        time.sleep(0.5)
    pod_gone = time.monotonic() - ran.ended
    print(
        f"TTL {TTL_SECONDS} s: claim deleted {released:.1f} s after the run ended, "
        f"its Pod deleting {pod_gone:.1f} s after"
    )
    assert released >= TTL_SECONDS - 3, released  # the last call ended just before the run
    server = pods(deep.cp, NS, f"berth.dev/agentdeployment={DEPLOYMENT}")
    logs = "".join(
        deep.kubectl("-n", NS, "logs", p["metadata"]["name"], check=False)
        for p in server
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "server"
    )
    assert "idle for" in logs and "released" in logs, logs[-3000:]
    # The pool still keeps a warm Pod Ready.
    deadline = time.monotonic() + 120
    while not [p for p in pods(deep.cp, NS, f"berth.dev/pool={POOL}") if _is_ready(p)]:
        assert time.monotonic() < deadline, deep.kubectl("-n", NS, "get", "pods")
        time.sleep(1)


def _is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


async def _run_failing(url: str) -> tuple[str, dict[str, Any], str, float]:
    client = get_client(url=url, timeout=300)
    thread_id = (await client.threads.create())["thread_id"]
    started = time.monotonic()
    run = await client.runs.create(
        thread_id,
        GRAPH,
        input={"messages": [{"role": "human", "content": f"workdir: {WORKDIR}"}]},
    )
    values = await client.runs.join(thread_id, run["run_id"])
    took = time.monotonic() - started
    status = (await client.runs.get(thread_id, run["run_id"]))["status"]
    return thread_id, dict(values), status, took


def test_missing_pool_fails_the_run_with_the_claims_reason(ran: Ran, deep: E2E) -> None:
    """With the pool gone, the next thread's claim stalls with PoolNotFound; the run waits
    readyTimeoutSeconds for it and fails naming that reason, and the runtime deletes the
    claim (no lease holds it: bound once the pool is back, it would keep a Pod forever)."""
    deep.kubectl("-n", NS, "delete", "sandboxpool", POOL, "--wait=true", "--timeout=120s")
    with port_forward(deep.cp, NS, f"svc/{DEPLOYMENT}", 8000) as url:
        thread_id, values, status, took = asyncio.run(_run_failing(url))
    print(f"missing pool: the run failed {took:.1f} s after it was created")
    assert status == "error", values
    error = values["__error__"]
    assert error["error"] == "SandboxUnavailable", error
    message = error["message"]
    assert "PoolNotFound" in message and f"SandboxPool {POOL} not found" in message, error
    assert READY_TIMEOUT_SECONDS - 1 <= took < READY_TIMEOUT_SECONDS + 60, took
    live = [
        c
        for c in _claims(deep, f"{THREAD_LABEL}={thread_id}")
        if not c["metadata"].get("deletionTimestamp")
    ]
    assert live == [], live
