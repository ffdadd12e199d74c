"""Build CustomResourceDefinition manifests (plain dicts) from the registry."""

from __future__ import annotations

from typing import Any

from berth_operator.api.registry import CustomResource
from berth_operator.api.schema import structural_schema

PART_OF = {"app.kubernetes.io/part-of": "berth"}


def build_crd(cr: CustomResource) -> dict[str, Any]:
    """The CRD of one Berth kind: schema, defaults, CEL, columns and subresources."""
    spec_schema = structural_schema(cr.spec_model)
    status_schema = structural_schema(cr.status_model)
    status_schema.pop("default", None)
    root: dict[str, Any] = {
        "type": "object",
        "description": (cr.spec_model.__doc__ or cr.kind).strip().splitlines()[0],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if cr.spec_required:
        root["required"] = ["spec"]
    if cr.root_rules:
        root["x-kubernetes-validations"] = list(cr.root_rules)
    subresources: dict[str, Any] = {"status": {}}
    if cr.scale:
        subresources["scale"] = dict(cr.scale)
    version: dict[str, Any] = {
        "name": cr.version,
        "served": True,
        "storage": True,
        "subresources": subresources,
        "additionalPrinterColumns": list(cr.printer_columns),
        "schema": {"openAPIV3Schema": root},
    }
    names: dict[str, Any] = {
        "kind": cr.kind,
        "listKind": f"{cr.kind}List",
        "plural": cr.plural,
        "singular": cr.singular,
    }
    if cr.short_names:
        names["shortNames"] = list(cr.short_names)
    if cr.categories:
        names["categories"] = list(cr.categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": cr.crd_name, "labels": dict(PART_OF)},
        "spec": {
            "group": cr.group,
            "scope": "Namespaced",
            "names": names,
            "versions": [version],
        },
    }


def build_peering_crds() -> list[dict[str, Any]]:
    """kopf's peering kinds (group kopf.dev): how operator replicas see each other.

    kopf keeps one record per running operator in ``status`` and pauses every
    replica but the one with the highest priority.
    """
    out = []
    for kind, plural, scope in (
        ("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
        ("KopfPeering", "kopfpeerings", "Namespaced"),
    ):
        out.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.kopf.dev", "labels": dict(PART_OF)},
                "spec": {
                    "group": "kopf.dev",
                    "scope": scope,
                    "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "description": "Liveness records of kopf operator replicas.",
                                    "properties": {
                                        "status": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        }
                                    },
                                }
                            },
                        }
                    ],
                },
            }
        )
    return out
