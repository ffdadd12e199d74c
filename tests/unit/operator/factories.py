"""Builders of AgentDeployment specs and observed objects for the unit tests."""

from __future__ import annotations

from typing import Any

from berth_operator.api.agentdeployment import AgentDeploymentSpec, parse_spec
from berth_operator.render.desired import Desired, Observed, render
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import Subject
from berth_operator.render.names import ChildRef, ref_of

IMAGES = ImageDefaults()
"""The operator's built-in image defaults (what it runs with when no flag says otherwise)."""
PASSWORDS = {
    "postgres-password": "pg-secret-1",
    "redis-password": "redis-secret-1",
    "sandbox-key": "ab" * 32,
}
EXTERNAL = {
    "postgres": {"external": {"secretName": "pg"}},
    "redis": {"external": {"secretName": "rd"}},
}


def spec(**fields: Any) -> AgentDeploymentSpec:
    base: dict[str, Any] = {
        "image": "example/agent:1",
        "graphs": {"inline": {"graphs": {"agent": "./agent.py:graph"}}},
    }
    base.update(fields)
    return parse_spec(base)


def subject(**fields: Any) -> Subject:
    base: dict[str, Any] = {"name": "demo", "namespace": "ns1", "uid": "uid-1", "generation": 3}
    base.update(fields)
    return Subject(**base)


def secret(name: str, **data: str) -> dict[str, Any]:
    import base64

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "ns1"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def external_observed() -> Observed:
    return Observed(
        postgres_secret=secret("pg", uri="postgresql://u:p@db/x"),
        redis_secret=secret("rd", uri="redis://r:6379/0"),
    )


def rendered(s: AgentDeploymentSpec | None = None, observed: Observed | None = None) -> Desired:
    return render(subject(), s or spec(), observed or Observed(), PASSWORDS, IMAGES)


def by_ref(desired: Desired) -> dict[ChildRef, dict[str, Any]]:
    return {ref_of(o): o for o in desired.objects}


def find(desired: Desired, kind: str, name: str) -> dict[str, Any]:
    for o in desired.objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    raise AssertionError(f"{kind}/{name} not rendered; have {[ref_of(o) for o in desired.objects]}")
