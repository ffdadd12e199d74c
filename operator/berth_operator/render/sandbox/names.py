"""Labels, annotations and child names of SandboxPools and SandboxClaims, in one place.

Pod states (the ``berth.dev/sandbox-state`` label):

- warm: owned by the pool, labels ``berth.dev/pool=<pool>`` (the pool's selector, the
  scale subresource's ``status.selector``), ``berth.dev/sandbox-state=warm`` and
  ``berth.dev/template-hash``;
- claimed: owned by the claim; ``berth.dev/pool`` removed, ``berth.dev/claim=<claim>``
  and ``berth.dev/sandbox-state=claimed`` added.

Every Pod a pool made, warm or claimed, warm-adopted or cold, also carries
``berth.dev/from-pool=<pool>``: the pool counts it against ``maxSize``, and the
managed NetworkPolicy selects it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from berth_operator.api.sandboxpool import PROXY_UID as SANDBOXPOOL_PROXY_UID
from berth_operator.render.meta import MANAGER, PART_OF, Subject, owner_reference, propagated

POOL_LABEL = "berth.dev/pool"
"""Warm Pods only: removed on adoption (contract: warm Pods carry it)."""
FROM_POOL_LABEL = "berth.dev/from-pool"
"""Every Pod of the pool, warm or claimed; never removed."""
STATE_LABEL = "berth.dev/sandbox-state"
STATE_WARM = "warm"
STATE_CLAIMED = "claimed"
CLAIM_LABEL = "berth.dev/claim"
TEMPLATE_HASH_LABEL = "berth.dev/template-hash"
LAUNCH_LABEL = "berth.dev/launch"
"""``warm`` or ``cold``: how a claimed Pod came to its claim."""
THREAD_LABEL = "berth.dev/thread-id"
ASSISTANT_LABEL = "berth.dev/assistant-id"
COMPONENT = "sandbox"
APP_NAME = "berth-sandbox"

TOKEN_HASH_ANNOTATION = "berth.dev/executor-token-sha256"
"""Hex sha256 of the claim's executor token; the executor reads it via downwardAPI."""
CLAIMED_AT_ANNOTATION = "berth.dev/claimed-at"
ACTIVITY_ANNOTATION = "berth.dev/last-activity"
"""On the SandboxClaim: RFC 3339 time of the last use, set by the runtime's claim client;
``idleTimeout`` counts from it (else from ``status.boundAt``)."""

TOKEN_KEY = "token"
EXECUTOR_PORT = 8790
PROXY_PORT = 15001
PROXY_ADMIN_PORT = 15021
PROXY_UID = SANDBOXPOOL_PROXY_UID


@dataclass(frozen=True)
class PoolNames:
    """Names of the objects one SandboxPool owns (besides its Pods)."""

    pool: str

    @property
    def ca_secret(self) -> str:
        """Secret with ``tls.crt``, ``tls.key`` and ``ca-bundle.crt`` (proxy only)."""
        return f"{self.pool}-ca"

    @property
    def ca_bundle(self) -> str:
        """ConfigMap with ``ca-bundle.crt`` (public: the sandbox mounts it, no Secret)."""
        return f"{self.pool}-ca-bundle"

    @property
    def proxy_config(self) -> str:
        """ConfigMap with the proxy's ``config.json``."""
        return f"{self.pool}-auth-proxy"

    @property
    def network_policy(self) -> str:
        return f"{self.pool}-sandbox"

    def pod(self, suffix: str) -> str:
        """A sandbox Pod name; ``suffix`` is random (chosen by the caller, so it can track
        the name in its expectations before the API server has seen it)."""
        return f"{self.pool}-{suffix}"

    def warm_selector(self) -> str:
        """``status.selector``: the warm Pods (what the scale subresource counts)."""
        return f"{POOL_LABEL}={self.pool},{STATE_LABEL}={STATE_WARM}"

    def all_pods_selector(self) -> str:
        """Every Pod the pool made (warm and claimed)."""
        return f"{FROM_POOL_LABEL}={self.pool}"


def token_secret_name(claim: str) -> str:
    """The claim's executor token Secret (key ``token``), owned by the claim."""
    return f"{claim}-executor"


def recommended_labels(component: str = COMPONENT) -> dict[str, str]:
    """The app.kubernetes.io labels of every sandbox object.

    Deliberately not ``render.meta.pod_labels``: that sets ``berth.dev/agentdeployment``,
    which the managed NetworkPolicy trusts as "a Pod of that AgentDeployment".
    """
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGER,
    }


def child_metadata(
    owner: Subject,
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    component: str = COMPONENT,
) -> dict[str, Any]:
    """Metadata of a pool's or claim's child (ConfigMap, Secret, NetworkPolicy), owned by it."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": {**propagated(owner.labels), **recommended_labels(component), **(labels or {})},
        "ownerReferences": [owner_reference(owner)],
    }
    notes = {**propagated(owner.annotations), **(annotations or {})}
    if notes:
        meta["annotations"] = notes
    return meta
