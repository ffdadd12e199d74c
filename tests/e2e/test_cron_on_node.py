"""An AgentCron fires a run inside the real runtime Pod: the runtime reads the AgentCron
from the API server with its own ServiceAccount, schedules it, and the agent's answer
(computed by its calculator tool in the worker Pod) lands on the cron's thread."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
import yaml
from langgraph_sdk import get_client

from tests.e2e.access import port_forward
from tests.e2e.conftest import E2E

pytestmark = pytest.mark.e2e


def cron_manifest(namespace: str, thread_id: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "berth.dev/v1alpha1",
            "kind": "AgentCron",
            "metadata": {"name": "every-minute", "namespace": namespace},
            "spec": {
                "deploymentRef": {"name": "example"},
                "assistantId": "agent",
                "schedule": "* * * * *",
                "threadId": thread_id,
                "input": {"messages": [{"role": "user", "content": "What is 17 * 23 + 4?"}]},
            },
        }
    )


def test_agentcron_fires_a_run_in_the_runtime_pod(e2e: E2E, example: str) -> None:
    thread_id = str(uuid.uuid4())
    e2e.kubectl("apply", "-f", "-", input=cron_manifest(example, thread_id))

    async def first_answer(url: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        client = get_client(url=url)
        deadline = time.monotonic() + 150  # the next minute, plus the runtime's sync
        while True:
            try:
                runs = await client.runs.list(thread_id)
            except Exception:  # the thread appears with the first tick
                runs = []
            done = [r for r in runs if r["status"] in ("success", "error")]
            if done:
                state = dict(await client.threads.get_state(thread_id))
                return [dict(r) for r in runs], state
            assert time.monotonic() < deadline, f"no cron run finished: {runs}"
            await asyncio.sleep(2)

    try:
        with port_forward(e2e.cp, example, "svc/example", 8000) as url:
            runs, state = asyncio.run(first_answer(url))
        assert any(r["status"] == "success" for r in runs), runs
        messages = state["values"]["messages"]
        assert any(m.get("name") == "calculator" for m in messages), messages
        assert "395" in messages[-1]["content"], messages[-1]
        # The runtime writes the AgentCron's status on its sync loop (every 10 s).
        deadline = time.monotonic() + 60
        while True:
            status = json.loads(
                e2e.kubectl("-n", example, "get", "agentcron", "every-minute", "-o", "json")
            )["status"]
            if status.get("lastScheduleTime") or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert status.get("lastScheduleTime"), status
        assert status.get("lastRunId") in {r["run_id"] for r in runs}, status
    finally:
        e2e.kubectl("-n", example, "delete", "agentcron", "every-minute", "--wait=true")
