"""AgentCron end to end: the operator, a real `berth-runtime serve` (real Postgres and Redis)
watching the AgentCrons of its AgentDeployment through the local kube-apiserver, and the
LangGraph SDK finding the runs.

The runtime's scheduler clock is set with BERTH_CRON_CLOCK_OFFSET_FILE (a test-only
switch): freezing it at "the next tick plus one second" makes an every-minute schedule fire
at once instead of after up to a minute, and nothing else fires until the next jump, however
slow the machine is.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from langgraph_sdk import get_client

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    OperatorProcess,
    agent,
    apply,
    berth_crds,
    condition,
    external_secrets,
    get,
    operator,
    wait_until,
)
from tests.integration.runtime.conftest import RuntimeProcess, launch, wait_ready
from tests.support.servers import Server, create_database
from tests.unit.test_argocd_health import health

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds", "operator"]  # fixtures

DEPLOYMENT = "agent"


def cron_body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "AgentCron",
        "metadata": {"name": name},
        "spec": {
            "deploymentRef": {"name": DEPLOYMENT},
            "assistantId": "factory",
            "schedule": "* * * * *",
            "input": {},
            **spec,
        },
    }


class Stack:
    """The runtime of AgentDeployment `agent` and the knob of its scheduler clock."""

    def __init__(self, runtime: RuntimeProcess, clock_file: Path, namespace: str) -> None:
        self.runtime = runtime
        self.clock_file = clock_file
        self.namespace = namespace

    def jump_to(self, when: datetime) -> None:
        """Freeze the runtime's scheduler clock at `when` (until the next jump)."""
        self.clock_file.write_text("@" + when.astimezone(UTC).isoformat() + "\n")

    def sdk(self, coro_fn: Any) -> Any:
        async def go() -> Any:
            client = get_client(url=self.runtime.url)
            try:
                return await coro_fn(client)
            finally:
                await client.aclose()

        return asyncio.run(go())

    def runtime_crons(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.sdk(lambda c: c.crons.search(limit=100))
        return result

    def runs_of(self, cron_id: str, graph: str = "factory") -> list[dict[str, Any]]:
        """Every run with metadata.cron_id == cron_id, through the SDK."""

        async def find(client: Any) -> list[dict[str, Any]]:
            found = []
            for th in await client.threads.search(metadata={"graph_id": graph}, limit=100):
                for run in await client.runs.list(th["thread_id"], limit=100):
                    if run["metadata"].get("cron_id") == cron_id:
                        found.append(run)
            return found

        result: list[dict[str, Any]] = self.sdk(find)
        return result


@pytest.fixture
def stack(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    kube_env: dict[str, str],
    postgres: Server,
    redis: Server,
    tmp_path: Path,
) -> Iterator[Stack]:
    kubectl("wait", "--for=condition=Established", "crd/agentcrons.berth.dev", "--timeout=30s")
    external_secrets(kubectl, namespace)
    apply(kubectl, namespace, agent(DEPLOYMENT))
    db = create_database(postgres.uri, f"c_{uuid.uuid4().hex[:12]}")
    clock_file = tmp_path / "clock-offset"
    clock_file.write_text("@" + datetime.now(UTC).isoformat() + "\n")  # frozen from the start
    env = {
        **{k: v for k, v in kube_env.items() if k == "KUBECONFIG"},
        "BERTH_DEPLOYMENT_NAME": DEPLOYMENT,
        "POD_NAMESPACE": namespace,
        "BERTH_AGENTCRON_SYNC_SECONDS": "0.5",
        "BERTH_CRON_CLOCK_OFFSET_FILE": str(clock_file),
    }
    runtime = launch("serve", db, redis.uri, tmp_path, extra_env=env, wait=False)
    try:
        wait_ready(runtime, timeout=240)  # generous: the box may be busy
        yield Stack(runtime, clock_file, namespace)
    finally:
        kubectl("delete", "agentcrons", "--all", "-n", namespace, "--wait=false", check=False)
        runtime.terminate()


def cron_of(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return get(kubectl, namespace, "agentcron", name)


def wait_status(
    kubectl: Kubectl, namespace: str, name: str, pred: Any, what: str, timeout: float = 120
) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def check() -> bool:
        nonlocal last
        last = cron_of(kubectl, namespace, name)
        return bool(pred(last))

    try:
        wait_until(check, timeout=timeout, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{json.dumps(last.get('status'), indent=1)}") from None
    return last


def events(kubectl: Kubectl, namespace: str, name: str) -> list[tuple[str, str]]:
    out = kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.kind=AgentCron,involvedObject.name={name}",
        "-o",
        "json",
    ).stdout
    return [(e["reason"], e["message"]) for e in json.loads(out)["items"]]


def next_tick(obj: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(obj["status"]["nextScheduleTime"].replace("Z", "+00:00"))


def test_agentcron_schedules_runs_suspends_and_is_removed(
    stack: Stack, kubectl: Kubectl, namespace: str
) -> None:
    # the operator gives the runtime exactly the access it needs, and nothing more
    wait_until(
        lambda: (
            kubectl(
                "get", "rolebinding", f"{DEPLOYMENT}-agentcrons", "-n", namespace, check=False
            ).returncode
            == 0
        ),
        timeout=90,
        what="the runtime's RoleBinding",
    )
    sa = f"system:serviceaccount:{namespace}:{DEPLOYMENT}"
    for verb, res, sub, allowed in (
        ("watch", "agentcrons", "", "yes"),
        ("patch", "agentcrons", "status", "yes"),
        ("create", "events", "", "yes"),
        ("patch", "agentcrons", "", "no"),
        ("get", "secrets", "", "no"),
    ):
        args = ["auth", "can-i", verb, res, "-n", namespace, "--as", sa]
        if sub:
            args.append(f"--subresource={sub}")
        got = kubectl(*args, check=False)
        assert got.stdout.strip() == allowed, (verb, res, sub, got.stdout, got.stderr)

    name = "every-minute"
    apply(
        kubectl,
        namespace,
        cron_body(
            name, onRunCompleted="Keep", concurrencyPolicy="Allow", startingDeadlineSeconds=5
        ),
    )
    obj = wait_status(
        kubectl,
        namespace,
        name,
        lambda o: condition(o, "Ready").get("reason") == "Scheduled",
        "Ready Scheduled",
    )
    cron_id = obj["status"]["cronId"]
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert condition(obj, "Stalled")["status"] == "False"
    assert health(obj)[0] == "Healthy"
    assert [c["cron_id"] for c in stack.runtime_crons()] == [cron_id]

    # 1. the runtime was "down" past the tick and its deadline: the tick is missed, no run
    first = next_tick(obj)
    stack.jump_to(first + timedelta(seconds=15))  # 15 s late, startingDeadlineSeconds 5
    wait_until(
        lambda: any(r == "MissedSchedule" for r, _ in events(kubectl, namespace, name)),
        timeout=90,
        what="a MissedSchedule event",
    )
    obj = wait_status(
        kubectl, namespace, name, lambda o: next_tick(o) > first, "the next tick to move on"
    )
    assert "lastRunId" not in obj["status"] and stack.runs_of(cron_id) == []

    # 2. on time: a run starts, found by cron_id through the SDK
    second = next_tick(obj)
    stack.jump_to(second + timedelta(seconds=1))
    obj = wait_status(
        kubectl, namespace, name, lambda o: o["status"].get("lastRunId"), "a started run"
    )
    assert obj["status"]["lastScheduleTime"] == second.strftime("%Y-%m-%dT%H:%M:%SZ")
    run_id = obj["status"]["lastRunId"]
    wait_until(
        lambda: [r["run_id"] for r in stack.runs_of(cron_id)] == [run_id],
        timeout=90,
        what="the run",
    )
    obj = wait_status(
        kubectl,
        namespace,
        name,
        lambda o: condition(o, "LastRunSucceeded").get("status") == "True",
        "LastRunSucceeded",
    )
    assert obj["status"]["lastSuccessfulTime"] == obj["status"]["lastScheduleTime"]
    assert ("Started", f"tick {obj['status']['lastScheduleTime']} started run {run_id}") in events(
        kubectl, namespace, name
    )

    # 3. suspend: no more ticks, even when the clock passes several
    kubectl(
        "patch", "agentcron", name, "-n", namespace, "--type=merge",
        "-p", '{"spec":{"suspend":true}}',
    )  # fmt: skip
    obj = wait_status(
        kubectl,
        namespace,
        name,
        lambda o: condition(o, "Ready").get("reason") == "Suspended",
        "Ready Suspended",
    )
    assert "nextScheduleTime" not in obj["status"] and health(obj)[0] == "Suspended"
    assert [c["enabled"] for c in stack.runtime_crons()] == [False]
    stack.jump_to(second + timedelta(minutes=5))
    time.sleep(3)  # ~10 scheduler passes with the clock past 4 ticks
    assert len(stack.runs_of(cron_id)) == 1

    # 4. delete: the runtime's cron goes away
    kubectl("delete", "agentcron", name, "-n", namespace)
    wait_until(
        lambda: stack.runtime_crons() == [], timeout=90, what="the runtime cron to be removed"
    )


def test_bad_agentcrons_are_rejected_or_stalled(
    stack: Stack, kubectl: Kubectl, namespace: str
) -> None:
    for spec, message in (
        ({"schedule": "every day"}, "schedule must be a standard cron expression with 5 fields"),
        ({"schedule": "*/5 * * * * *"}, "schedule must be a standard cron expression"),
        ({"timeZone": "not a zone!"}, "timeZone must be an IANA time zone name"),
        (
            {"threadId": str(uuid.uuid4()), "onRunCompleted": "Keep"},
            "onRunCompleted applies only to stateless crons",
        ),
        ({"concurrencyPolicy": "Sometimes"}, "Unsupported value"),
    ):
        result = kubectl(
            "apply", "-n", namespace, "-f", "-",
            input=yaml.safe_dump(cron_body("bad", **spec)), check=False,
        )  # fmt: skip
        assert result.returncode != 0 and message in result.stderr, (spec, result.stderr)

    # what CEL cannot know ends Stalled with a reason, and schedules nothing
    apply(
        kubectl,
        namespace,
        cron_body("bad-minute", schedule="61 * * * *"),
        cron_body("bad-zone", timeZone="Mars/Olympus"),
        cron_body("no-graph", assistantId="no-such-graph"),
        {
            **cron_body("orphan"),
            "spec": {**cron_body("orphan")["spec"], "deploymentRef": {"name": "nope"}},
        },
    )
    for name, reason in (
        ("bad-minute", "InvalidSchedule"),
        ("bad-zone", "InvalidTimeZone"),
        ("no-graph", "AssistantNotFound"),
        ("orphan", "DeploymentNotFound"),
    ):
        obj = wait_status(
            kubectl,
            namespace,
            name,
            lambda o, r=reason: condition(o, "Stalled").get("reason") == r,
            f"{name} Stalled {reason}",
        )
        assert condition(obj, "Stalled")["status"] == "True"
        assert condition(obj, "Ready")["status"] == "False"
        assert health(obj)[0] == "Degraded"
    assert stack.runtime_crons() == []
    assert any(r == "InvalidTimeZone" for r, _ in events(kubectl, namespace, "bad-zone"))

    # fixing the spec schedules it
    kubectl(
        "patch", "agentcron", "bad-zone", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"timeZone":"Europe/Paris"}}',
    )  # fmt: skip
    wait_status(
        kubectl,
        namespace,
        "bad-zone",
        lambda o: condition(o, "Ready").get("status") == "True",
        "bad-zone Ready after the fix",
    )
    assert len(stack.runtime_crons()) == 1


def test_forbid_skips_and_replace_cancels_with_long_runs(
    stack: Stack, kubectl: Kubectl, namespace: str
) -> None:
    """Two every-minute AgentCrons whose runs take ~25 s; the clock jumps one minute."""
    slow = {"assistantId": "steps", "config": {"configurable": {"sleep": 5}}}
    apply(
        kubectl,
        namespace,
        cron_body("forbid", onRunCompleted="Keep", **slow),  # Forbid: the default
        cron_body("replace", onRunCompleted="Keep", concurrencyPolicy="Replace", **slow),
    )
    objs = {
        name: wait_status(
            kubectl,
            namespace,
            name,
            lambda o: condition(o, "Ready").get("reason") == "Scheduled",
            f"{name} Ready",
        )
        for name in ("forbid", "replace")
    }
    tick = max(next_tick(o) for o in objs.values())
    stack.jump_to(tick + timedelta(seconds=1))
    first = {
        name: wait_status(
            kubectl, namespace, name, lambda o: o["status"].get("active"), f"{name} active run"
        )["status"]["lastRunId"]
        for name in objs
    }
    stack.jump_to(tick + timedelta(minutes=1, seconds=1))

    wait_until(
        lambda: any(r == "TickSkipped" for r, _ in events(kubectl, namespace, "forbid")),
        timeout=90,
        what="a TickSkipped event",
    )
    skipped = [m for r, m in events(kubectl, namespace, "forbid") if r == "TickSkipped"]
    assert first["forbid"] in skipped[0] and "Forbid" in skipped[0]
    forbid = cron_of(kubectl, namespace, "forbid")
    assert forbid["status"]["lastRunId"] == first["forbid"]
    assert forbid["status"]["active"] == [first["forbid"]]  # untouched, still running

    replace = wait_status(
        kubectl,
        namespace,
        "replace",
        lambda o: o["status"].get("lastRunId") not in (None, first["replace"]),
        "a replacing run",
    )
    assert any(
        r == "Replaced" and first["replace"] in m for r, m in events(kubectl, namespace, "replace")
    )
    replace_id = replace["status"]["cronId"]

    def statuses() -> dict[str, str]:
        return {r["run_id"]: r["status"] for r in stack.runs_of(replace_id, graph="steps")}

    wait_until(
        lambda: statuses().get(first["replace"]) == "interrupted", timeout=90, what="interrupted"
    )
    assert len(statuses()) == 2
