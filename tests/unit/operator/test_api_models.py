"""The pydantic models: defaults, and the same cross-field rules as the CRD's CEL."""

from __future__ import annotations

import pytest
from berth_operator.api.agentdeployment import parse_spec
from pydantic import ValidationError

from tests.unit.operator.factories import spec


def test_defaults_bundle_postgres_and_redis_and_leave_images_to_the_operator() -> None:
    s = spec()
    assert s.postgres.bundled is not None
    assert s.postgres.bundled.image is None  # the operator's configured image, at render
    assert s.postgres.bundled.storage.keep_on_delete is True
    assert s.redis.bundled is not None and s.redis.bundled.image is None
    assert s.server.replicas == 1 and s.server.port == 8000
    assert s.workers.enabled is False and s.workers.jobs_per_worker == 10
    assert s.service.type == "ClusterIP" and s.service.port == 8000
    assert s.image_pull_policy is None


def test_image_is_optional_and_an_explicit_one_is_kept() -> None:
    bare = parse_spec({"graphs": {"inline": {"graphs": {"a": "/app/agent.py:graph"}}}})
    assert bare.image is None and "image" not in bare.wire()
    assert spec().image == "example/agent:1"
    with pytest.raises(ValidationError, match="at least 1 character"):
        spec(image="")


def test_wire_uses_camel_case_and_drops_nulls() -> None:
    wire = spec(workers={"enabled": True, "jobsPerWorker": 3}).wire()
    assert wire["workers"] == {
        "enabled": True,
        "replicas": 1,
        "jobsPerWorker": 3,
        "shutdownGraceSeconds": 180,
    }
    assert "autoscaling" not in wire


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"postgres": {"bundled": {}, "external": {"secretName": "x"}}},
            "exactly one of postgres.bundled or postgres.external",
        ),
        ({"postgres": {}}, "exactly one of postgres.bundled or postgres.external"),
        (
            {"redis": {"bundled": {}, "external": {"secretName": "x"}}},
            "exactly one of redis.bundled or redis.external",
        ),
        (
            {
                "autoscaling": {
                    "minReplicas": 5,
                    "maxReplicas": 2,
                    "targetCPUUtilizationPercentage": 80,
                }
            },
            "minReplicas must be <= autoscaling.maxReplicas",
        ),
        ({"autoscaling": {"maxReplicas": 2}}, "needs targetCPUUtilizationPercentage or queueDepth"),
        (
            {"autoscaling": {"target": "Workers", "maxReplicas": 3, "queueDepth": {}}},
            "target Workers needs workers.enabled",
        ),
        ({"env": [{"name": "DATABASE_URI", "value": "x"}]}, "must not set DATABASE_URI"),
        (
            {"graphs": {"inline": {"graphs": {"a": "x"}}, "configMapRef": {"name": "c"}}},
            "exactly one of graphs.inline or graphs.configMapRef",
        ),
        ({"graphs": {"inline": {"graphs": {}}}}, "at least 1 item"),
        ({"server": {"replicas": -1}}, "greater than or equal to 0"),
        ({"imagePullPolicy": "Sometimes"}, "Always"),
        ({"unknownField": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        spec(**fields)
    assert message in str(err.value)


def test_inline_langgraph_json_keeps_unknown_keys() -> None:
    s = spec(
        graphs={"inline": {"graphs": {"a": "./a.py:g"}, "env": {"X": "1"}, "dependencies": ["."]}}
    )
    assert s.graphs.inline is not None
    dumped = s.graphs.inline.model_dump(mode="json")
    assert dumped == {"graphs": {"a": "./a.py:g"}, "env": {"X": "1"}, "dependencies": ["."]}


def test_hpa_ownership_flags() -> None:
    cpu = {"maxReplicas": 4, "targetCPUUtilizationPercentage": 70}
    assert spec(autoscaling=cpu).hpa_owns_server
    assert not spec(autoscaling={**cpu, "enabled": False}).hpa_owns_server
    s = spec(workers={"enabled": True}, autoscaling={**cpu, "target": "Workers"})
    assert s.hpa_owns_workers and not s.hpa_owns_server
