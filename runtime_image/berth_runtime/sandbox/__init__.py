"""Sandboxes for agents that run code: claims on the operator's warm pools.

Graphs use `sandbox_backend()` (or `current_backend(config)` in a factory) as the
`backend=` of `create_deep_agent`. Names are imported on first access: the claim API pulls
in the Kubernetes client and the backend deepagents, which a runtime without sandboxes
(and `berth_runtime.config`, which checks the `sandbox` key) should not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from berth_runtime.sandbox.backend import ExecutorBackend, ExecutorError
    from berth_runtime.sandbox.claims import (
        BoundSandbox,
        Claim,
        ClaimFailed,
        SandboxClaims,
        derive_token,
        ensure_claim,
        last_activity,
        release,
        touch,
        wait_ready,
    )
    from berth_runtime.sandbox.provider import SandboxProvider, get_provider
    from berth_runtime.sandbox.resolvers import SandboxUnavailable
    from berth_runtime.sandbox.scoped import (
        ScopedSandboxBackend,
        current_backend,
        sandbox_backend,
    )

_WHERE = {
    "BoundSandbox": "claims",
    "Claim": "claims",
    "ClaimFailed": "claims",
    "SandboxClaims": "claims",
    "derive_token": "claims",
    "ensure_claim": "claims",
    "last_activity": "claims",
    "release": "claims",
    "touch": "claims",
    "wait_ready": "claims",
    "ExecutorBackend": "backend",
    "ExecutorError": "backend",
    "SandboxProvider": "provider",
    "SandboxUnavailable": "resolvers",
    "get_provider": "provider",
    "ScopedSandboxBackend": "scoped",
    "current_backend": "scoped",
    "sandbox_backend": "scoped",
}

__all__ = [
    "BoundSandbox",
    "Claim",
    "ClaimFailed",
    "ExecutorBackend",
    "ExecutorError",
    "SandboxClaims",
    "SandboxProvider",
    "SandboxUnavailable",
    "ScopedSandboxBackend",
    "current_backend",
    "derive_token",
    "ensure_claim",
    "get_provider",
    "last_activity",
    "release",
    "sandbox_backend",
    "touch",
    "wait_ready",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
