"""Turn pydantic JSON Schema into a Kubernetes *structural* OpenAPI v3 schema.

The API server accepts only a subset of JSON Schema: no ``$ref``, no
``anyOf``-for-nullability, no ``additionalProperties`` next to ``properties``,
a ``type`` on every node (except int-or-string / preserve-unknown nodes), and
defaults that are themselves valid and pruned. This module does those rewrites.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

_DROP_KEYS = {"title", "$defs"}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's validation schema, rewritten for a CRD's ``openAPIV3Schema``."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    resolved = _resolve(raw, defs)
    cleaned = _clean(resolved)
    _minimize_defaults(cleaned)
    return cleaned


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            target = copy.deepcopy(defs[name])
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _resolve(merged, defs)
        return {k: _resolve(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_resolve(v, defs) for v in node]
    return node


def _clean(node: dict[str, Any]) -> dict[str, Any]:
    node = dict(node)
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) == 1:
            node = {**branches[0], **node}
        elif {b.get("type") for b in branches} == {"integer", "string"}:
            node["x-kubernetes-int-or-string"] = True
        else:
            raise ValueError(f"cannot express anyOf {branches!r} structurally")
    node = {k: v for k, v in node.items() if k not in _DROP_KEYS}
    if node.get("default", 0) is None:
        del node["default"]
    if node.get("additionalProperties") is True and node.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        del node["additionalProperties"]
    if "properties" in node:
        node["properties"] = {k: _clean(v) for k, v in node["properties"].items()}
        node.pop("additionalProperties", None)
        node.setdefault("type", "object")
    ap = node.get("additionalProperties")
    if ap is False:
        del node["additionalProperties"]
    elif isinstance(ap, dict):
        node["additionalProperties"] = _clean(ap)
    if isinstance(node.get("items"), dict):
        node["items"] = _clean(node["items"])
    if (
        "type" not in node
        and not node.get("x-kubernetes-int-or-string")
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        raise ValueError(f"schema node without a type: {node!r}")
    return node


def _minimize_defaults(node: dict[str, Any]) -> None:
    """Shrink object defaults to what nested defaults would not fill in anyway.

    ``server: {replicas: 1, port: 8000}`` becomes ``server: {}``: the API server
    applies nested defaults after the outer one, with the same result, and the
    schema stays readable.
    """
    for child in node.get("properties", {}).values():
        _minimize_defaults(child)
    if isinstance(node.get("items"), dict):
        _minimize_defaults(node["items"])
    if "default" in node and isinstance(node["default"], dict):
        node["default"] = _strip_implied(node["default"], node)


def _strip_implied(value: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    props = schema.get("properties", {})
    for key, v in value.items():
        sub = props.get(key, {})
        if isinstance(v, dict) and sub.get("properties"):
            v = _strip_implied(v, sub)
        implied = sub.get("default")
        if isinstance(implied, dict):
            implied = _strip_implied(implied, sub)
        if implied is not None and implied == v:
            continue
        out[key] = v
    return out
