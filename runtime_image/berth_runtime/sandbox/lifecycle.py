"""Start and stop the process-wide sandbox provider from the runtime's lifespan.

Kept light on purpose: the backend pulls in deepagents and the claim API the Kubernetes
client, so both are imported only when a sandbox is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth_runtime.sandbox.settings import parse_sandbox

_started = False


def wanted(raw: Mapping[str, Any] | None, env: Mapping[str, str]) -> bool:
    """A `sandbox` key in langgraph.json, or a pool or URL in the environment."""
    return raw is not None or bool(env.get("BERTH_SANDBOX_POOL") or env.get("BERTH_SANDBOX_URL"))


def start_sandboxes(raw: Mapping[str, Any] | None, env: Mapping[str, str]) -> None:
    """Configure the provider and start its idle reaper on the running loop."""
    global _started
    if not wanted(raw, env):
        return
    from berth_runtime.sandbox.provider import configure

    configure(parse_sandbox(raw)).start()
    _started = True


async def stop_sandboxes() -> None:
    global _started
    if _started:
        from berth_runtime.sandbox.provider import shutdown

        await shutdown()
        _started = False
