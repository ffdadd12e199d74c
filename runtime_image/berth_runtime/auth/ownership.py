"""Owners of stateless runs (pure).

A stateless run's thread is temporary and gone soon after the run ends, so it cannot carry
the owner the authorization handlers filter on. Instead the filter that allowed the run's
creation is stamped into the run's own metadata, and later reads, joins, cancels and lists
check the caller's filter against that metadata, as they do against a thread's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth_runtime.auth.filters import containment


def stamp_owner(metadata: Mapping[str, Any] | None, filters: Mapping[str, Any]) -> dict[str, Any]:
    """The run's metadata with the creator's filter written in (the filter wins a clash)."""
    return {**(metadata or {}), **containment(filters)}
