"""Faults in real Pods: a worker Pod killed mid-run, a server Pod killed under a client's
stream. The proof is in what the containers computed and stored: the pipeline graph's
final state, its step records in Postgres (which Pod ran which step, how often), the
checkpoint history, and the events the client received."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.e2e.access import pods, port_forward
from tests.e2e.conftest import E2E
from tests.e2e.pipeline_runs import (
    checkpoint_steps,
    repeated_steps,
    step_records,
    wait_for_steps,
)

pytestmark = pytest.mark.e2e

WORKERS = "berth.dev/agentdeployment=example,app.kubernetes.io/component=worker"
SERVERS = "berth.dev/agentdeployment=example,app.kubernetes.io/component=server"


def kill_pod(e2e: E2E, namespace: str, name: str) -> None:
    """A crash as the kubelet sees one: no grace, the containers are killed at once."""
    e2e.kubectl("-n", namespace, "delete", "pod", name, "--grace-period=0", "--force")


def wait_ready(e2e: E2E, namespace: str, selector: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ready = [
            p
            for p in pods(e2e.cp, namespace, selector)
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        ]
        if len(ready) >= count:
            return
        assert time.monotonic() < deadline, f"{selector}: {len(ready)} of {count} Ready"
        time.sleep(1)


def test_worker_pod_killed_mid_run(e2e: E2E, example: str) -> None:
    steps = 10
    worker = pods(e2e.cp, example, WORKERS)[0]["metadata"]["name"]

    async def scenario(url: str) -> dict[str, Any]:
        client = get_client(url=url)
        thread_id = (await client.threads.create())["thread_id"]
        pipeline = {"steps": steps, "seconds": 1.0}
        run = await client.runs.create(thread_id, "pipeline", input=pipeline)
        await wait_for_steps(client, thread_id, at_least=3)
        values = (await client.threads.get_state(thread_id))["values"]
        checkpointed = len(values["done"]) if isinstance(values, dict) else 0
        kill_pod(e2e, example, worker)
        started = time.monotonic()
        final = await client.runs.join(thread_id, run["run_id"])
        return {
            "final": final,
            "checkpointed": checkpointed,
            "seconds_to_finish": time.monotonic() - started,
            "run": await client.runs.get(thread_id, run["run_id"]),
            "records": await step_records(client, thread_id),
            "checkpoints": await checkpoint_steps(client, thread_id),
        }

    with port_forward(e2e.cp, example, "svc/example", 8000) as url:
        got = asyncio.run(scenario(url))
    print(f"worker killed: the run finished {got['seconds_to_finish']:.1f} s later")
    assert got["run"]["status"] == "success", got["run"]
    assert got["final"]["done"] == list(range(1, steps + 1)), got["final"]
    records = got["records"]
    assert sorted({r.step for r in records}) == list(range(1, steps + 1))
    # No step the killed worker had checkpointed ran again; at most the one in flight did.
    repeated = repeated_steps(records)
    assert len(repeated) <= 1 and all(s > got["checkpointed"] for s in repeated), records
    # The run moved: the killed Pod ran the first steps, its replacement the rest.
    hosts = [r.host for r in sorted(records, key=lambda r: r.step)]
    assert hosts[0] == worker and hosts[-1] != worker, hosts
    checkpoints = got["checkpoints"]
    assert len(checkpoints) == len(set(checkpoints)), checkpoints


def test_server_pod_killed_while_a_client_streams(e2e: E2E, example: str) -> None:
    """The client loses its server mid-stream and rejoins through the other one with the
    last event id it saw: every step's update arrives exactly once, in order."""
    steps = 8
    wait_ready(e2e, example, SERVERS, 2, timeout=120)
    first, second = (p["metadata"]["name"] for p in pods(e2e.cp, example, SERVERS)[:2])
    seen: list[tuple[str, int]] = []  # (event id, step)

    async def stream_until_killed(url: str) -> tuple[str, str, bool]:
        client = get_client(url=url)
        thread_id = (await client.threads.create())["thread_id"]
        stream = client.runs.stream(
            thread_id,
            "pipeline",
            input={"steps": steps, "seconds": 0.7},
            stream_mode="updates",
            stream_resumable=True,
        )
        run_id, broke = "", False
        try:
            async for part in stream:
                if part.event == "metadata":
                    run_id = part.data["run_id"]
                if part.event == "updates" and "step" in part.data:
                    assert part.id, "a resumable stream's events carry ids"
                    seen.append((part.id, part.data["step"]["done"][0]))
                    if len(seen) == 3:
                        kill_pod(e2e, example, first)
        except (httpx.HTTPError, OSError):
            broke = True
        return thread_id, run_id, broke

    async def rejoin(url: str, thread_id: str, run_id: str) -> None:
        client = get_client(url=url)
        async for part in client.runs.join_stream(
            thread_id, run_id, stream_mode="updates", last_event_id=seen[-1][0]
        ):
            if part.event == "updates" and "step" in part.data:
                seen.append((part.id or "", part.data["step"]["done"][0]))

    with port_forward(e2e.cp, example, f"pod/{first}", 8000) as url:
        thread_id, run_id, broke = asyncio.run(stream_until_killed(url))
    assert broke, f"the stream outlived the killed server Pod: {seen}"
    before = len(seen)
    assert run_id and 3 <= before < steps, seen
    with port_forward(e2e.cp, example, f"pod/{second}", 8000) as url:
        asyncio.run(rejoin(url, thread_id, run_id))
    assert [step for _, step in seen] == list(range(1, steps + 1)), seen
    ids = [eid for eid, _ in seen]
    assert len(set(ids)) == len(ids), ids
