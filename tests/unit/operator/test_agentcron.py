"""AgentCron: the model and CRD (CEL mirrored by pydantic), the runtime's RBAC and identity
env the operator renders, and the operator's deploymentRef status."""

from __future__ import annotations

import re
from typing import Any

import pytest
from berth_operator.api.agentcron import SCHEDULE_PATTERN, TIME_ZONE_PATTERN, parse_spec
from berth_operator.api.crd import build_crd
from berth_operator.api.registry import AGENT_CRON, KINDS
from berth_operator.render.agentcron_reference import reference_status
from pydantic import ValidationError

from tests.unit.operator.factories import rendered, spec

BASE = {"deploymentRef": {"name": "agent"}, "assistantId": "agent", "schedule": "*/5 * * * *"}
THREAD = "2a7d5a1e-8f3b-4c1e-9d55-0b6f2f1d3c4e"
NOW = "2026-01-01T00:00:00Z"


def test_defaults() -> None:
    s = parse_spec(BASE)
    assert s.concurrency_policy == "Forbid" and s.time_zone == "UTC" and s.suspend is False
    assert s.on_run_completed is None and s.successful_runs_history_limit == 3
    assert s.failed_runs_history_limit == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"schedule": "every day"},
        {"schedule": "* * * *"},
        {"schedule": "* * * * * *"},
        {"schedule": "CRON_TZ=UTC * * * * *"},
        {"timeZone": "not a zone!"},
        {"threadId": THREAD, "onRunCompleted": "Keep"},
        {"threadId": "thread-1"},
        {"concurrencyPolicy": "Sometimes"},
        {"startingDeadlineSeconds": -1},
    ],
)
def test_invalid_specs_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_spec({**BASE, **bad})


@pytest.mark.parametrize(
    "good",
    [
        {"schedule": "@hourly"},
        {"schedule": "0 9 * * mon-fri", "timeZone": "America/Argentina/Buenos_Aires"},
        {"threadId": THREAD},
        {"onRunCompleted": "Keep", "concurrencyPolicy": "Replace"},
        # what only the runtime can refuse passes admission: it ends Stalled instead
        {"schedule": "61 * * * *", "timeZone": "Mars/Olympus"},
    ],
)
def test_valid_specs(good: dict[str, Any]) -> None:
    parse_spec({**BASE, **good})


def test_crd_has_columns_status_and_cel_rules() -> None:
    assert AGENT_CRON in KINDS
    crd = build_crd(AGENT_CRON)
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:5] == ["Schedule", "Suspend", "Last", "Next", "Ready"]
    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = [r["rule"] for r in spec_schema["x-kubernetes-validations"]]
    assert any("self.schedule.matches(" in r for r in rules)
    assert any("onRunCompleted" in r and "threadId" in r for r in rules)
    assert spec_schema["properties"]["concurrencyPolicy"]["default"] == "Forbid"
    # the CEL patterns are the Python ones with escaped backslashes (RE2 reads the same)
    schedule_rule = next(r for r in rules if "self.schedule.matches(" in r)
    assert SCHEDULE_PATTERN.replace("\\", "\\\\") in schedule_rule
    assert re.search(TIME_ZONE_PATTERN, "Etc/GMT+5") and not re.search(TIME_ZONE_PATTERN, "a b")


def test_runtime_gets_its_identity_and_agentcron_rbac() -> None:
    d = rendered(spec())
    kinds = {(o["kind"], o["metadata"]["name"]) for o in d.objects}
    assert {("Role", "demo-agentcrons"), ("RoleBinding", "demo-agentcrons")} <= kinds
    role = next(o for o in d.objects if o["kind"] == "Role")
    granted = {(r["resources"][0], v) for r in role["rules"] for v in r["verbs"]}
    assert granted == {
        ("agentcrons", "get"),
        ("agentcrons", "list"),
        ("agentcrons", "watch"),
        ("agentcrons/status", "get"),
        ("agentcrons/status", "patch"),
        ("events", "create"),
    }
    binding = next(o for o in d.objects if o["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo", "namespace": "ns1"}]
    assert binding["metadata"]["ownerReferences"][0]["kind"] == "AgentDeployment"
    server = next(o for o in d.objects if o["metadata"]["name"] == "demo-server")
    env = {e["name"]: e for e in server["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BERTH_DEPLOYMENT_NAME"]["value"] == "demo"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_the_binding_follows_a_user_service_account() -> None:
    d = rendered(spec(pod={"serviceAccountName": "mine"}))
    binding = next(o for o in d.objects if o["kind"] == "RoleBinding")
    assert binding["subjects"][0]["name"] == "mine"
    assert not any(o["kind"] == "ServiceAccount" for o in d.objects)


def cron(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "nightly", "namespace": "ns1", "generation": 4},
        "spec": BASE,
        "status": status or {},
    }


def conds(patch: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in patch["conditions"]}


def test_missing_deployment_is_stalled_once() -> None:
    patch = reference_status(cron(), False, NOW)
    assert patch is not None and patch["observedGeneration"] == 4
    assert conds(patch) == {
        "Ready": ("False", "DeploymentNotFound"),
        "Stalled": ("True", "DeploymentNotFound"),
        "Reconciling": ("False", "DeploymentNotFound"),
    }
    assert "'agent' not found" in patch["conditions"][1]["message"]
    assert reference_status(cron(patch), False, NOW) is None  # nothing new to write


def test_appearing_deployment_hands_over_to_the_runtime() -> None:
    stalled = reference_status(cron(), False, NOW)
    assert stalled is not None
    waiting = reference_status(cron(stalled), True, NOW)
    assert waiting is not None and conds(waiting)["Reconciling"] == ("True", "WaitingForRuntime")
    runtime_status = {
        "observedGeneration": 4,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled"}],
    }
    assert reference_status(cron(runtime_status), True, NOW) is None
