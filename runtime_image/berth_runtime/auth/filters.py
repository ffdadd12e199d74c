"""What an authorization handler's filter means for a resource's metadata (pure).

A filter maps metadata keys to a value (equality), `{"$eq": v}` or `{"$contains": v}` (the
key holds a list that contains `v`, or every item of `v` when it is a list).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FilterError(ValueError):
    """A filter this server cannot apply."""


def _condition(cond: Any) -> tuple[str, Any]:
    if isinstance(cond, Mapping) and len(cond) == 1 and next(iter(cond)) in ("$eq", "$contains"):
        op, value = next(iter(cond.items()))
        return str(op), value
    if isinstance(cond, Mapping) and any(str(k).startswith("$") for k in cond):
        raise FilterError(f"unsupported filter operator in {dict(cond)!r}")
    return "$eq", cond


def matches(metadata: Mapping[str, Any] | None, filters: Mapping[str, Any] | None) -> bool:
    if not filters:
        return True
    metadata = metadata or {}
    for key, cond in filters.items():
        op, value = _condition(cond)
        have = metadata.get(key)
        if op == "$eq":
            if have != value:
                return False
        else:
            wanted = value if isinstance(value, list) else [value]
            if not isinstance(have, list) or any(w not in have for w in wanted):
                return False
    return True


def containment(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The same filter as a jsonb containment document (`metadata @> ...`) for searches."""
    out: dict[str, Any] = {}
    for key, cond in (filters or {}).items():
        op, value = _condition(cond)
        out[key] = value if op == "$eq" else (value if isinstance(value, list) else [value])
    return out
