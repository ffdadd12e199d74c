"""A namespaced Role and its RoleBinding for the runtime's ServiceAccount (pure).

Each feature that needs API access from the runtime (AgentCron sync, sandbox claims) gets a
Role of its own, so the rules stay next to the feature that explains them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from berth_operator.render.meta import Subject, metadata


def role(subject: Subject, name: str, rules: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(subject, name, "server"),
        "rules": list(rules),
    }


def role_binding(subject: Subject, name: str, service_account: str) -> dict[str, Any]:
    """Binds Role ``name`` to the runtime Pods' ServiceAccount (the operator's, or the user's)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(subject, name, "server"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": service_account, "namespace": subject.namespace}
        ],
    }
