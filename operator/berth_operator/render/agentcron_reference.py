"""The operator's part of an AgentCron's status: is its deploymentRef there? (pure)

The runtime of the referenced AgentDeployment writes everything else. Without that
deployment no runtime will ever look at the AgentCron, so the operator says so: Stalled
with reason DeploymentNotFound. When the deployment appears, it hands over with
Reconciling=True (WaitingForRuntime) until the runtime writes its own status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NOT_FOUND = "DeploymentNotFound"
WAITING = "WaitingForRuntime"


def _condition(type_: str, status: str, reason: str, message: str, gen: Any, now: str) -> Any:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": gen,
        "lastTransitionTime": now,
    }


def reference_status(
    cron: Mapping[str, Any], deployment_exists: bool, now: str
) -> dict[str, Any] | None:
    """A status patch for the AgentCron, or None when the runtime's status stands."""
    meta = cron.get("metadata") or {}
    gen = meta.get("generation")
    name = ((cron.get("spec") or {}).get("deploymentRef") or {}).get("name")
    conditions = (cron.get("status") or {}).get("conditions") or []
    reasons = {c.get("type"): c.get("reason") for c in conditions}
    if not deployment_exists:
        message = f"AgentDeployment {name!r} not found in namespace {meta.get('namespace')!r}"
        stalled: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Stalled"), {})
        if (
            reasons.get("Ready") == NOT_FOUND
            and stalled.get("status") == "True"
            and stalled.get("message") == message
            and (cron.get("status") or {}).get("observedGeneration") == gen
        ):
            return None
        return {
            "observedGeneration": gen,
            "conditions": [
                _condition("Ready", "False", NOT_FOUND, message, gen, now),
                _condition("Stalled", "True", NOT_FOUND, message, gen, now),
                _condition("Reconciling", "False", NOT_FOUND, "", gen, now),
            ],
            "nextScheduleTime": None,
            "active": None,
        }
    if reasons.get("Ready") == NOT_FOUND or not conditions:
        message = f"waiting for the runtime of AgentDeployment {name!r} to schedule it"
        return {
            "conditions": [
                _condition("Ready", "False", WAITING, message, gen, now),
                _condition("Stalled", "False", WAITING, "", gen, now),
                _condition("Reconciling", "True", WAITING, message, gen, now),
            ],
        }
    return None
