"""The generated CRDs: fresh on disk, structural, with defaults, CEL, columns and subresources."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from berth_operator.api.crd import build_crd
from berth_operator.api.generate import REPO, crd_files
from berth_operator.api.registry import AGENT_DEPLOYMENT, KINDS, SANDBOX_POOL

from tests.unit.operator.factories import spec


def _schema() -> dict[str, Any]:
    crd = build_crd(AGENT_DEPLOYMENT)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_generated_files_are_up_to_date() -> None:
    """Fails when a model changed without `make crds`."""
    stale = [
        str(rel)
        for rel, content in crd_files().items()
        if not (REPO / rel).exists() or (REPO / rel).read_text() != content
    ]
    assert not stale, f"run `make crds`; stale: {stale}"
    on_disk = {p.relative_to(REPO) for p in (REPO / "crds").glob("*.yaml")}
    assert on_disk == {r for r in crd_files() if r.parts[0] == "crds"}


def test_one_file_per_kind_and_chart_copies_are_kept_and_switchable() -> None:
    files = crd_files()
    for kind in KINDS:
        assert Path("crds") / f"{kind.crd_name}.yaml" in files
        chart = files[Path("charts/berth/templates/crds") / f"{kind.crd_name}.yaml"]
        assert chart.splitlines()[1] == "{{- if .Values.crds.enabled }}"
        body = yaml.safe_load("\n".join(chart.splitlines()[2:-1]))
        assert body["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def _walk(node: dict[str, Any], path: str = "") -> list[str]:
    """Paths of nodes that break the structural-schema rules."""
    bad = []
    if "$ref" in node or "anyOf" in node or "title" in node:
        bad.append(path)
    free = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
        "x-kubernetes-int-or-string"
    )
    if "type" not in node and not free:
        bad.append(path)
    if "properties" in node and "additionalProperties" in node:
        bad.append(path)
    for k, v in node.get("properties", {}).items():
        bad += _walk(v, f"{path}.{k}")
    if isinstance(node.get("items"), dict):
        bad += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        bad += _walk(node["additionalProperties"], f"{path}{{}}")
    return bad


def test_schema_is_structural() -> None:
    assert _walk(_schema()) == []


def _apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """What the API server's structural defaulting does (outer defaults, then nested)."""
    if isinstance(value, dict) and "properties" in schema:
        out = dict(value)
        for key, sub in schema["properties"].items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = _apply_defaults(out[key], sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_apply_defaults(v, schema["items"]) for v in value]
    return value


def test_schema_defaults_equal_model_defaults() -> None:
    """The API server's defaulting and pydantic's produce the same spec."""
    spec_schema = _schema()["properties"]["spec"]
    for minimal in (
        {"image": "i", "graphs": {"inline": {"graphs": {"a": "./a.py:g"}}}},
        {
            "image": "i",
            "graphs": {"configMapRef": {"name": "c"}},
            "postgres": {"external": {"secretName": "s"}},
            "autoscaling": {"maxReplicas": 3, "queueDepth": {}},
            "workers": {"enabled": True},
        },
    ):
        by_server = _apply_defaults(minimal, spec_schema)
        assert by_server == spec(**minimal).wire()


def test_cel_rules_cover_cross_field_checks() -> None:
    s = _schema()
    spec_schema = s["properties"]["spec"]
    rules = {
        r["rule"]
        for node in (
            spec_schema,
            spec_schema["properties"]["postgres"],
            spec_schema["properties"]["redis"],
            spec_schema["properties"]["autoscaling"],
            spec_schema["properties"]["graphs"],
        )
        for r in node["x-kubernetes-validations"]
    }
    assert "has(self.bundled) != has(self.external)" in rules
    assert "self.minReplicas <= self.maxReplicas" in rules
    assert "has(self.inline) != has(self.configMapRef)" in rules
    assert any("metadata.name" in r["rule"] for r in s["x-kubernetes-validations"])


def test_enums_and_defaults_in_schema() -> None:
    props = _schema()["properties"]["spec"]["properties"]
    assert props["service"]["properties"]["type"]["enum"] == [
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
    ]
    assert props["postgres"]["default"] == {"bundled": {}}
    bundled = props["postgres"]["properties"]["bundled"]["properties"]
    assert "default" not in bundled["image"]  # the operator's configured image, at render
    assert bundled["storage"]["properties"]["keepOnDelete"]["default"] is True
    size = bundled["storage"]["properties"]["size"]
    assert size["x-kubernetes-int-or-string"] is True and size["default"] == "1Gi"


def test_no_image_has_a_schema_default_and_none_is_required() -> None:
    """A CRD default cannot follow the chart's image values: the operator fills them."""
    spec = _schema()["properties"]["spec"]
    assert "image" not in spec["required"] and "graphs" in spec["required"]
    props = spec["properties"]
    fields = [
        props["image"],
        props["imagePullPolicy"],
        props["postgres"]["properties"]["bundled"]["properties"]["image"],
        props["redis"]["properties"]["bundled"]["properties"]["image"],
    ]
    pool = build_crd(SANDBOX_POOL)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    proxy = pool["properties"]["spec"]["properties"]["authProxy"]
    fields += [proxy["properties"][k] for k in ("image", "netinitImage", "imagePullPolicy")]
    assert "required" not in proxy
    assert all("default" not in f for f in fields)
    assert all("operator's configured" in f["description"] for f in fields)


def test_columns_subresources_and_status() -> None:
    crd = build_crd(AGENT_DEPLOYMENT)
    version = crd["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["Endpoint"] == ".status.endpoint"
    assert columns["Age"] == ".metadata.creationTimestamp"
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.server.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["properties"]["kopf"]["x-kubernetes-preserve-unknown-fields"] is True
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
