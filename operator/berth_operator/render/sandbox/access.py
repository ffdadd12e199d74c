"""What the runtime needs for sandboxes: a namespaced Role, its RoleBinding, and the key
from which it derives executor tokens (pure).

Rendered only when the AgentDeployment has `spec.sandbox`. The runtime finds or creates the
SandboxClaim of a thread or an assistant, watches it until Ready, records use in its
`berth.dev/last-activity` annotation (patch) and deletes it when idle. It reads no Secret:
every replica derives a claim's executor token as HMAC-SHA256(key, claim name) from Secret
`<name>-sandbox-key` (mounted as env `BERTH_SANDBOX_TOKEN_KEY`) and puts its sha256 into the
claim's `spec.executorTokenSHA256`. So the Role has no `secrets` rule: the runtime cannot
read the auth proxy's rule Secrets (the very API keys the proxy keeps from agents).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from berth_operator.api.common import GROUP
from berth_operator.render import rbac
from berth_operator.render.meta import Subject, metadata
from berth_operator.render.names import ChildNames

RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [GROUP],
        "resources": ["sandboxclaims"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
]
KEY = "key"
"""The key of Secret `<name>-sandbox-key` holding the token key (64 hex characters)."""
NEW_KEY = "sandbox-key"
"""The entry of the caller's fresh random values used when the Secret has no key yet."""
KEY_ENV = "BERTH_SANDBOX_TOKEN_KEY"


def role(subject: Subject, names: ChildNames) -> dict[str, Any]:
    return rbac.role(subject, names.sandbox_access, RULES)


def role_binding(subject: Subject, names: ChildNames, service_account: str) -> dict[str, Any]:
    return rbac.role_binding(subject, names.sandbox_access, service_account)


def key_secret(
    subject: Subject,
    names: ChildNames,
    existing: Mapping[str, Any] | None,
    new_values: Mapping[str, str],
) -> dict[str, Any]:
    """Secret `<name>-sandbox-key`: generated once (``new_values[NEW_KEY]``, random, chosen
    by the caller), never rotated: a new key would change every live claim's token."""
    live = ((existing or {}).get("data") or {}).get(KEY)
    value = live or base64.b64encode(new_values[NEW_KEY].encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(subject, names.sandbox_key, "server"),
        "type": "Opaque",
        "data": {KEY: value},
    }


def key_env(names: ChildNames) -> dict[str, Any]:
    """The runtime's `BERTH_SANDBOX_TOKEN_KEY`, from the key Secret."""
    return {
        "name": KEY_ENV,
        "valueFrom": {"secretKeyRef": {"name": names.sandbox_key, "key": KEY}},
    }
