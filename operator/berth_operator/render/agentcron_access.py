"""RBAC of the runtime for AgentCrons: a namespaced Role and its RoleBinding (pure).

The runtime lists the AgentCrons of its namespace, keeps the ones naming its AgentDeployment
in its cron table, writes their status and posts Events about ticks. Nothing else: no
write access to any spec, no Secrets, nothing outside the namespace.
"""

from __future__ import annotations

from typing import Any

from berth_operator.api.common import GROUP
from berth_operator.render import rbac
from berth_operator.render.meta import Subject
from berth_operator.render.names import ChildNames

RULES: list[dict[str, Any]] = [
    {"apiGroups": [GROUP], "resources": ["agentcrons"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [GROUP], "resources": ["agentcrons/status"], "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]


def role(subject: Subject, names: ChildNames) -> dict[str, Any]:
    return rbac.role(subject, names.agentcron_access, RULES)


def role_binding(subject: Subject, names: ChildNames, service_account: str) -> dict[str, Any]:
    return rbac.role_binding(subject, names.agentcron_access, service_account)
