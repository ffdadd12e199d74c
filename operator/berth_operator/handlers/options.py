"""Operator options, from the command line (see cli.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from berth_operator.render.images import ImageDefaults

FINALIZER = "berth.dev/finalizer"
STATE_PREFIX = "berth.dev"


@dataclass(frozen=True)
class Options:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    liveness: str | None = None
    metrics_port: int | None = None
    """Serve Prometheus metrics on this port (``--metrics-port``); None: not served."""
    peering_name: str = "berth"
    priority: int = 0
    standalone: bool = False
    resync_seconds: float = 60.0
    recheck_seconds: float = 5.0
    workers: int = 16
    watch_server_timeout: int = 300
    watch_client_timeout: int = 330
    peering_lifetime: int = 60
    images: ImageDefaults = field(default_factory=ImageDefaults)
    """Images (and pull policy) for specs that name none (flags ``--*-image``)."""
    extra: dict[str, str] = field(default_factory=dict)
