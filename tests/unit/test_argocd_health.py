"""docs/gitops/health.lua, the Argo CD health check for berth.dev resources, run in
Lua 5.1 (the dialect of Argo CD's gopher-lua) against conditions built by the operator's
and the runtime's own status functions, for every state of every kind."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from berth_operator.api.registry import KINDS
from berth_operator.render.agentcron_reference import reference_status
from berth_operator.render.sandbox import status as sandbox_status
from berth_operator.render.status import (
    COMPONENTS,
    Verdict,
    conditions,
    invalid_spec_verdicts,
    summary_verdicts,
)
from berth_runtime.crons.agentcron import Problem as CronProblem
from berth_runtime.crons.agentcron import status_of as cron_status_of
from lupa import lua51

GITOPS = Path(__file__).resolve().parents[2] / "docs" / "gitops"
SCRIPT = (GITOPS / "health.lua").read_text()
NOW = "2026-01-01T00:00:00Z"


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime()
    lua.globals().obj = _to_lua(lua, obj)
    result = lua.execute(SCRIPT)
    return str(result["status"]), str(result["message"])


def resource(generation: int, observed: int, verdicts: dict[str, Verdict]) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "conditions": conditions(verdicts, observed, None, NOW),
        },
    }


def with_summary(components: dict[str, Verdict]) -> dict[str, Verdict]:
    return {**components, **summary_verdicts(components)}


ALL_READY = {t: Verdict(True, "Available", "ready") for t in COMPONENTS}


def test_ready_and_current_is_healthy() -> None:
    assert health(resource(3, 3, with_summary(ALL_READY)))[0] == "Healthy"


def test_a_generation_not_yet_observed_is_progressing_even_if_ready() -> None:
    status, message = health(resource(4, 3, with_summary(ALL_READY)))
    assert status == "Progressing" and "Generation 4" in message


def test_no_status_yet_is_progressing() -> None:
    assert health({"metadata": {"generation": 1}})[0] == "Progressing"


def test_rolling_out_is_progressing() -> None:
    rolling = {**ALL_READY, "ServerReady": Verdict(False, "PodsNotReady", "1/2 Pods ready")}
    status, message = health(resource(2, 2, with_summary(rolling)))
    assert status == "Progressing" and "ServerReady: 1/2 Pods ready" in message


def test_stalled_component_is_degraded_with_its_reason() -> None:
    missing = {
        **ALL_READY,
        "DatabaseReady": Verdict(False, "SecretNotFound", "Secret pg not found", stalled=True),
    }
    assert health(resource(2, 2, with_summary(missing))) == (
        "Degraded",
        "SecretNotFound: Secret pg not found",
    )


def test_invalid_spec_is_degraded() -> None:
    status, message = health(resource(5, 5, invalid_spec_verdicts("bad graphs")))
    assert (status, message) == ("Degraded", "InvalidSpec: bad graphs")


# --- every kind, every state --------------------------------------------------------------


def kind_object(
    kind: str,
    conditions: list[dict[str, Any]] | None,
    *,
    gen: int = 1,
    observed: int = 1,
    **spec: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "generation": gen},
        "spec": spec,
    }
    if conditions is not None:
        obj["status"] = {"observedGeneration": observed, "conditions": conditions}
    return obj


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def sandbox_conditions(verdicts: dict[str, Verdict]) -> list[dict[str, Any]]:
    return sandbox_status.conditions(verdicts, 1, None, NOW)


POOL_READY = {
    "Ready": Verdict(True, "Available", "2/2 warm Pods ready"),
    "Reconciling": Verdict(False, "ReconciliationSucceeded", "2/2"),
    "Stalled": Verdict(False, "NotStalled", "no problem found"),
}
POOL_FILLING = {
    "Ready": Verdict(False, "Replenishing", "1/2 warm Pods ready"),
    "Reconciling": Verdict(True, "Progressing", "1/2 warm Pods ready"),
    "Stalled": Verdict(False, "NotStalled", "making progress"),
}


@pytest.mark.parametrize(
    ("kind", "verdicts", "expected"),
    [
        ("SandboxPool", POOL_READY, "Healthy"),
        ("SandboxPool", POOL_FILLING, "Progressing"),
        ("SandboxPool", sandbox_status.stalled("InvalidSpec", "bad template"), "Degraded"),
        (
            "SandboxClaim",
            {**POOL_READY, "Ready": Verdict(True, "Bound", "bound to Pod p-1")},
            "Healthy",
        ),
        (
            "SandboxClaim",
            {**POOL_FILLING, "Ready": Verdict(False, "Pending", "waiting for a Pod")},
            "Progressing",
        ),
        (
            "SandboxClaim",
            {**POOL_READY, "Ready": Verdict(False, "SandboxLost", "the Pod failed")},
            "Degraded",
        ),
        ("SandboxClaim", sandbox_status.stalled("PoolNotFound", "no pool"), "Degraded"),
    ],
)
def test_sandbox_kinds(kind: str, verdicts: dict[str, Verdict], expected: str) -> None:
    status, message = health(kind_object(kind, sandbox_conditions(verdicts)))
    assert status == expected, message
    shown = verdicts["Stalled"] if verdicts["Stalled"].status else verdicts["Ready"]
    if expected == "Progressing":
        shown = verdicts["Reconciling"]
    assert message.startswith(shown.reason)


@pytest.mark.parametrize("kind", ["SandboxPool", "SandboxClaim", "AgentCron", "AgentDeployment"])
def test_every_kind_waits_for_a_first_status_and_a_new_generation(kind: str) -> None:
    assert health(kind_object(kind, None))[0] == "Progressing"
    ready = [cond("Ready", "True", "Ok"), cond("Stalled", "False", "Ok")]
    assert health(kind_object(kind, ready, gen=3, observed=3))[0] == "Healthy"
    status, message = health(kind_object(kind, ready, gen=4, observed=3))
    assert status == "Progressing" and "Generation 4" in message


CRON_NOW = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def agentcron(**spec: Any) -> dict[str, Any]:
    return kind_object("AgentCron", None, gen=2, observed=2, schedule="* * * * *", **spec)


def with_runtime_status(obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
    cron = {"cron_id": "c", "next_run_date": CRON_NOW}
    obj["status"] = cron_status_of(obj, cron, kw.get("summary"), kw.get("problem"), CRON_NOW)
    return obj


def test_agentcron_states_from_the_runtime_status() -> None:
    assert health(with_runtime_status(agentcron())) == (
        "Healthy",
        "Scheduled: next tick at 2026-01-01T10:00:00Z",
    )
    failed = health(with_runtime_status(agentcron(), summary={"last_status": "error"}))
    assert failed[0] == "Healthy" and "last run: RunFailed" in failed[1]
    suspended = health(with_runtime_status(agentcron(suspend=True)))
    assert suspended[0] == "Suspended"
    bad = CronProblem("InvalidTimeZone", "timeZone 'Mars/Olympus' is not a time zone")
    assert health(with_runtime_status(agentcron(), problem=bad)) == (
        "Degraded",
        "InvalidTimeZone: timeZone 'Mars/Olympus' is not a time zone",
    )
    # a suspended cron with an invalid spec is still Degraded: it needs fixing
    assert health(with_runtime_status(agentcron(suspend=True), problem=bad))[0] == "Degraded"


def test_agentcron_states_from_the_operator_status() -> None:
    obj = agentcron()
    missing = reference_status(obj, False, NOW)
    assert missing is not None
    obj["status"] = missing
    status, message = health(obj)
    assert status == "Degraded" and message.startswith("DeploymentNotFound: AgentDeployment")
    waiting = reference_status(obj, True, NOW)
    assert waiting is not None
    obj["status"] = {**missing, **waiting}
    assert health(obj)[0] == "Progressing"
    assert health(agentcron()) == ("Progressing", "Waiting for the runtime of the AgentDeployment")


def test_ready_false_with_a_failure_reason_is_degraded_without_stalled() -> None:
    for reason in ("RolloutFailed", "InvalidSpec", "PoolNotFound", "SomethingError"):
        obj = kind_object("AgentDeployment", [cond("Ready", "False", reason, "m")])
        assert health(obj) == ("Degraded", f"{reason}: m")
    obj = kind_object("AgentDeployment", [cond("Ready", "False", "PodsNotReady", "1/2")])
    assert health(obj) == ("Progressing", "PodsNotReady: 1/2")


def test_argocd_cm_registers_the_script_for_every_kind() -> None:
    cm = yaml.safe_load((GITOPS / "argocd-cm.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    keys = {f"resource.customizations.health.berth.dev_{k.kind}" for k in KINDS}
    keys |= {
        f"resource.customizations.health.berth.dev_{k}"
        for k in ("AgentDeployment", "AgentCron", "SandboxPool", "SandboxClaim")
    }
    assert set(cm["data"]) == keys
    assert all(v == SCRIPT for v in cm["data"].values())  # verbatim copies of health.lua
