"""Every rendered child validates against the Kubernetes OpenAPI schemas (strict)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.unit.operator.factories import EXTERNAL, external_observed, rendered, spec

K8S_VERSION = "1.36"

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "split-hpa-queue": {
        "workers": {"enabled": True, "replicas": 2},
        "autoscaling": {"target": "Workers", "maxReplicas": 5, "queueDepth": {}},
    },
    "overrides": {
        "server": {"resources": {"limits": {"cpu": 1, "memory": "1Gi"}}},
        "postgres": {"bundled": {"storage": {"keepOnDelete": False, "storageClassName": "x"}}},
        "autoscaling": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 60},
        "pod": {
            "tolerations": [
                {
                    "key": "k",
                    "operator": "Equal",
                    "value": "v",
                    "effect": "NoExecute",
                    "tolerationSeconds": 30,
                }
            ],
            "nodeSelector": {"a": "b"},
            "imagePullSecrets": [{"name": "r"}],
            "securityContext": {"runAsNonRoot": True, "fsGroup": 1000},
        },
        "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "envFrom": [{"prefix": "X_", "secretRef": {"name": "s"}}],
    },
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_children_are_valid_kubernetes_objects(variant: str) -> None:
    d = rendered(spec(**VARIANTS[variant]))
    for obj in d.objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_external_variant_is_valid() -> None:
    for obj in rendered(spec(**EXTERNAL), external_observed()).objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
