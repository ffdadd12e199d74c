"""Names, labels, owner references and hashes shared by every rendered child."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth_operator.api.common import API_VERSION

MANAGER = "berth-operator"
PART_OF = "berth"
INSTANCE_LABEL = "berth.dev/agentdeployment"
APPLIED_HASH = "berth.dev/applied-hash"
CONFIG_HASH = "berth.dev/config-hash"

# Metadata that must never be copied from the custom resource onto its children:
# GitOps tracking (Argo CD would adopt or prune the children; Flux likewise),
# client bookkeeping, kopf's and our own state, and the recommended labels we set.
NOT_PROPAGATED_PREFIXES = (
    "argocd.argoproj.io/",
    "kustomize.toolkit.fluxcd.io/",
    "helm.toolkit.fluxcd.io/",
    "kubectl.kubernetes.io/",
    "kopf.zalando.org/",
    "berth.dev/",
    "app.kubernetes.io/",
    "meta.helm.sh/",
    "helm.sh/",
    "deployment.kubernetes.io/",
)


@dataclass(frozen=True)
class Subject:
    """Identity of the custom resource being rendered (its metadata, not its spec)."""

    name: str
    namespace: str
    uid: str
    generation: int = 1
    kind: str = "AgentDeployment"
    api_version: str = API_VERSION
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Subject:
        meta = body.get("metadata", {})
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation", 1)),
            kind=body.get("kind", "AgentDeployment"),
            api_version=body.get("apiVersion", API_VERSION),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
        )


def propagated(items: Mapping[str, str]) -> dict[str, str]:
    """Labels or annotations of the custom resource that its children may carry."""
    return {
        k: v
        for k, v in items.items()
        if not any(k.startswith(p) for p in NOT_PROPAGATED_PREFIXES)
        and k != "app.kubernetes.io/instance"
    }


def selector_labels(subject: Subject, component: str) -> dict[str, str]:
    """The immutable selector of one component's Pods."""
    return {INSTANCE_LABEL: subject.name, "app.kubernetes.io/component": component}


def child_labels(subject: Subject, component: str, name: str = "berth-runtime") -> dict[str, str]:
    """Recommended labels plus the propagated labels of the custom resource.

    ``app.kubernetes.io/instance`` is deliberately not set: Argo CD's label
    tracking uses it, and the children must not look like Argo CD's own objects.
    """
    return {**propagated(subject.labels), **pod_labels(subject, component, name)}


def pod_labels(subject: Subject, component: str, name: str = "berth-runtime") -> dict[str, str]:
    """Labels of Pod templates: recommended ones only, so relabelling the custom
    resource does not restart Pods (``pod.labels`` adds the user's own)."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGER,
        INSTANCE_LABEL: subject.name,
    }


def owner_reference(subject: Subject) -> dict[str, Any]:
    return {
        "apiVersion": subject.api_version,
        "kind": subject.kind,
        "name": subject.name,
        "uid": subject.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    subject: Subject,
    name: str,
    component: str,
    *,
    app: str = "berth-runtime",
    owned: bool = True,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": subject.namespace,
        "labels": child_labels(subject, component, app),
    }
    notes = {**propagated(subject.annotations), **(annotations or {})}
    if notes:
        meta["annotations"] = notes
    if owned:
        meta["ownerReferences"] = [owner_reference(subject)]
    return meta


def digest(value: Any, length: int = 16) -> str:
    """Stable short hash of any JSON-able value."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def stamp(obj: dict[str, Any]) -> dict[str, Any]:
    """Return ``obj`` with an annotation hashing its own content.

    The effect layer compares it with the live object: an unchanged hash plus a
    live object that still contains every rendered field means nothing to write.
    """
    meta = obj["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != APPLIED_HASH}
    body = {**obj, "metadata": {**meta, "annotations": annotations}}
    annotations = {**annotations, APPLIED_HASH: digest(body)}
    return {**obj, "metadata": {**meta, "annotations": annotations}}


def prune_none(value: Any) -> Any:
    """Drop ``None`` values recursively (the API would store them as explicit nulls)."""
    if isinstance(value, dict):
        return {k: prune_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_none(v) for v in value]
    return value
