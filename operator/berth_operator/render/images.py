"""The images the operator uses when a spec names none: one value, passed into every render.

A CRD default cannot follow a Helm value (the API server would write it into every
object), so the image fields of the specs have no schema default; the operator fills
them here at render time from its own configuration (chart values -> ``berth-operator
run --*-image`` flags -> ``ImageDefaults``). An image written in a spec always wins,
untouched; the operator never writes it back into the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PullPolicy = Literal["Always", "IfNotPresent", "Never"]

VERSION = "0.1.0"
"""Tag of Berth's own images the operator defaults to (the chart's appVersion)."""

RUNTIME_IMAGE = f"ghcr.io/berth-dev/berth-runtime:{VERSION}"
SANDBOX_AGENT_IMAGE = f"ghcr.io/berth-dev/berth-sandbox-agent:{VERSION}"
# The egress-init container shells out to iptables, which the static agent image lacks:
# auth_proxy/Dockerfile's `netinit` target (Debian slim + iptables + the same binaries).
NETINIT_IMAGE = f"ghcr.io/berth-dev/berth-sandbox-netinit:{VERSION}"
POSTGRES_IMAGE = "postgres:16"
REDIS_IMAGE = "redis:7"
PULL_POLICY: PullPolicy = "IfNotPresent"
"""Works for images imported into a node without a registry, and for tagged images."""


@dataclass(frozen=True)
class ImageDefaults:
    """Image of each part when its spec leaves it out; the built-ins are the official ones."""

    runtime: str = RUNTIME_IMAGE
    """berth-runtime, with the example agent baked into /app."""
    sandbox_agent: str = SANDBOX_AGENT_IMAGE
    """The auth proxy and the executor (SandboxPool ``authProxy.image``)."""
    netinit: str = NETINIT_IMAGE
    """The egress-init container (SandboxPool ``authProxy.netinitImage``)."""
    postgres: str = POSTGRES_IMAGE
    redis: str = REDIS_IMAGE
    pull_policy: PullPolicy = PULL_POLICY
    """For every container whose spec sets no ``imagePullPolicy``."""
