"""Reading an AgentDeployment's status for people and scripts (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PHASES = (
    ("Postgres", "DatabaseReady"),
    ("Redis", "RedisReady"),
    ("server", "ServerReady"),
    ("worker", "WorkersReady"),
)


@dataclass(frozen=True)
class Phase:
    name: str
    state: str  # ready | waiting | failed | off
    reason: str
    message: str


def conditions(ad: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = ad.get("status") or {}
    return {str(c.get("type")): c for c in status.get("conditions") or []}


def current(ad: Mapping[str, Any]) -> bool:
    """The status describes the latest spec (observedGeneration caught up)."""
    status = ad.get("status") or {}
    generation = (ad.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    return generation is not None and observed is not None and observed >= generation


def phases(ad: Mapping[str, Any]) -> list[Phase]:
    conds = conditions(ad)
    stalled = conds.get("Stalled", {}).get("status") == "True"
    out: list[Phase] = []
    for name, ctype in PHASES:
        c = conds.get(ctype)
        if c is None:
            workers_off = ctype == "WorkersReady" and current(ad)
            out.append(Phase(name, "off" if workers_off else "waiting", "", ""))
            continue
        reason, message = str(c.get("reason") or ""), str(c.get("message") or "")
        if c.get("status") == "True":
            state = "ready"
        elif stalled and conds["Stalled"].get("reason") == reason:
            state = "failed"
        else:
            state = "waiting"
        out.append(Phase(name, state, reason, message))
    return out


def ready(ad: Mapping[str, Any]) -> bool:
    return current(ad) and conditions(ad).get("Ready", {}).get("status") == "True"


def failure(ad: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when the deployment is stalled on the latest spec."""
    stalled = conditions(ad).get("Stalled")
    if current(ad) and stalled is not None and stalled.get("status") == "True":
        return str(stalled.get("reason") or "Stalled"), str(stalled.get("message") or "")
    return None


def failing_component(ad: Mapping[str, Any]) -> str | None:
    """The component (server, worker, postgres, redis) whose Pods to show on failure."""
    for p in phases(ad):
        if p.state in ("failed", "waiting") and p.reason:
            return {"Postgres": "postgres", "Redis": "redis"}.get(p.name, p.name)
    return None


def summary(ad: Mapping[str, Any]) -> dict[str, Any]:
    """What `berth status --output json` prints for one deployment."""
    meta = ad.get("metadata") or {}
    spec = ad.get("spec") or {}
    status = ad.get("status") or {}
    workers = status.get("workers") or {}
    ready_cond = conditions(ad).get("Ready", {})
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "ready": ready(ad),
        "reason": ready_cond.get("reason"),
        "message": ready_cond.get("message"),
        "image": spec.get("image"),
        "endpoint": status.get("endpoint"),
        "server": {"ready": status.get("readyReplicas") or 0, "replicas": status.get("replicas")},
        "workers": {
            "ready": workers.get("readyReplicas") or 0,
            "replicas": workers.get("replicas") or 0,
        },
        "phases": [
            {"name": p.name, "state": p.state, "reason": p.reason, "message": p.message}
            for p in phases(ad)
        ],
        "generation": meta.get("generation"),
        "observedGeneration": status.get("observedGeneration"),
    }
