"""Decide whether a rendered child differs from the live one (so a no-op writes nothing).

A child needs an apply when it is missing, when its content hash annotation
differs (the render changed, including removed fields), or when a field we
render no longer has our value in the live object (someone edited it). Fields
the API server or other controllers add are ignored; quantities compare by value
because the API server canonicalises them ("0.5" -> "500m", "1024Mi" -> "1Gi").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from berth_operator.render.meta import APPLIED_HASH, INSTANCE_LABEL

_QUANTITY_PARENTS = {"limits", "requests", "capacity"}
_QUANTITY_KEYS = {"averageValue", "storage"}
_SUFFIX = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$")


def parse_quantity(value: int | float | str) -> Decimal:
    """A Kubernetes quantity as a number (raises ValueError when it is not one)."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _QUANTITY.match(value.strip())
    if not m:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = m.group(1), m.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation as e:
        raise ValueError(f"not a quantity: {value!r}") from e
    if suffix[:1] in {"e", "E"}:
        return base * Decimal(10) ** int(suffix[1:])
    return base * _SUFFIX[suffix]


def _same_quantity(a: Any, b: Any) -> bool:
    try:
        return parse_quantity(a) == parse_quantity(b)
    except (ValueError, TypeError):
        return bool(a == b)


def contains(live: Any, wanted: Any, key: str = "", parent: str = "") -> bool:
    """Whether every field of ``wanted`` has the same value in ``live``."""
    if isinstance(wanted, dict):
        if not wanted:
            return live is None or isinstance(live, dict)
        if not isinstance(live, dict):
            return False
        return all(contains(live.get(k), v, k, key) for k, v in wanted.items())
    if isinstance(wanted, list):
        if not wanted:
            return live is None or live == []
        if not isinstance(live, list):
            return False
        if all(isinstance(w, dict) and "name" in w for w in wanted):
            by_name = {x.get("name"): x for x in live if isinstance(x, dict)}
            return all(contains(by_name.get(w["name"]), w, key, parent) for w in wanted)
        return len(live) == len(wanted) and all(
            contains(lv, w, key, parent) for lv, w in zip(live, wanted, strict=True)
        )
    if parent in _QUANTITY_PARENTS or key in _QUANTITY_KEYS:
        return _same_quantity(live, wanted)
    return bool(live == wanted)


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    if live is None:
        return True
    want_hash = desired["metadata"].get("annotations", {}).get(APPLIED_HASH)
    have_hash = (live.get("metadata", {}).get("annotations") or {}).get(APPLIED_HASH)
    if want_hash != have_hash:
        return True
    body = {k: v for k, v in desired.items() if k not in {"apiVersion", "kind"}}
    return not contains(live, body)


def is_owned_by(live: dict[str, Any], uid: str) -> bool:
    """Whether the live object has an owner reference to the given owner uid."""
    refs = live.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == uid for r in refs)


def adoption_conflict(desired: dict[str, Any], live: dict[str, Any] | None, uid: str) -> str | None:
    """Why the live object must not be taken over, or None when it is ours (or absent).

    Ours: it has our owner reference, or it carries our instance label and no other
    controller (a kept PVC or credentials Secret of an earlier AgentDeployment of the
    same name). Anything else belongs to someone else and is left alone.
    """
    if live is None or is_owned_by(live, uid):
        return None
    meta = live.get("metadata", {})
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return (
                f"{desired['kind']} {meta.get('name')} is controlled by "
                f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})"
            )
    want = desired["metadata"]["labels"].get(INSTANCE_LABEL)
    if (meta.get("labels") or {}).get(INSTANCE_LABEL) != want:
        return f"{desired['kind']} {meta.get('name')} already exists and is not managed by Berth"
    return None
