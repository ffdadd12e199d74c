"""Builders of SandboxPool/SandboxClaim specs and sandbox Pods for the unit tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from berth_operator.api.sandboxclaim import SandboxClaimSpec
from berth_operator.api.sandboxclaim import parse_spec as parse_claim
from berth_operator.api.sandboxpool import SandboxPoolSpec
from berth_operator.api.sandboxpool import parse_spec as parse_pool
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import Subject
from berth_operator.render.sandbox.names import (
    CLAIM_LABEL,
    FROM_POOL_LABEL,
    POOL_LABEL,
    STATE_LABEL,
    TEMPLATE_HASH_LABEL,
)

IMAGES = ImageDefaults()
NOW = dt.datetime(2026, 12, 3, 8, 0, 0, tzinfo=dt.UTC)
HASH = "current0hash0000"
OLD = "old0hash00000000"

OPENAI_RULE: dict[str, Any] = {
    "name": "openai",
    "hosts": ["api.openai.com", "*.openai.azure.com"],
    "pathPrefix": "/v1/",
    "headers": [
        {
            "name": "Authorization",
            "value": "Bearer {secret}",
            "secretRef": {"name": "openai-key", "key": "api-key"},
        }
    ],
    "placeholder": "sk-berth-placeholder",
}
GITHUB_RULE: dict[str, Any] = {
    "name": "github",
    "hosts": ["api.github.com"],
    "headers": [
        {
            "name": "Authorization",
            "value": "token {secret}",
            "secretRef": {"name": "gh", "key": "t"},
        },
        {"name": "X-Org", "secretRef": {"name": "gh", "key": "org"}},
    ],
}


def pool_spec(**fields: Any) -> SandboxPoolSpec:
    base: dict[str, Any] = {"template": {"image": "python:3.12-slim"}, "replicas": 2, "maxSize": 5}
    base.update(fields)
    return parse_pool(base)


def claim_spec(**fields: Any) -> SandboxClaimSpec:
    base: dict[str, Any] = {"poolRef": {"name": "py"}, "threadId": "t-1"}
    base.update(fields)
    return parse_claim(base)


def pool_subject(**fields: Any) -> Subject:
    base: dict[str, Any] = {
        "name": "py",
        "namespace": "ns1",
        "uid": "pool-uid",
        "generation": 2,
        "kind": "SandboxPool",
    }
    base.update(fields)
    return Subject(**base)


def claim_subject(name: str = "c1", **fields: Any) -> Subject:
    base: dict[str, Any] = {
        "name": name,
        "namespace": "ns1",
        "uid": f"{name}-uid",
        "generation": 1,
        "kind": "SandboxClaim",
    }
    base.update(fields)
    return Subject(**base)


def pod(
    name: str,
    *,
    state: str = "warm",
    ready: bool = True,
    age: float = 600.0,
    thash: str = HASH,
    phase: str = "Running",
    terminating: bool = False,
    claim: str | None = None,
) -> dict[str, Any]:
    """A Pod of pool ``py`` as the API server would return it."""
    labels = {FROM_POOL_LABEL: "py", STATE_LABEL: state, TEMPLATE_HASH_LABEL: thash}
    if state == "warm":
        labels[POOL_LABEL] = "py"
    if claim:
        labels[CLAIM_LABEL] = claim
    created = (NOW - dt.timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns1",
        "labels": labels,
        "creationTimestamp": created,
        "resourceVersion": "7",
    }
    if terminating:
        meta["deletionTimestamp"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
