"""ConfigMap of langgraph.json, config hash (rolls Pods), reference checks (-> Stalled)."""

from __future__ import annotations

import json
from typing import Any

from berth_operator.render.desired import Observed, check_references, references, render, wiring
from berth_operator.render.meta import CONFIG_HASH

from tests.unit.operator.factories import (
    EXTERNAL,
    IMAGES,
    PASSWORDS,
    external_observed,
    find,
    rendered,
    secret,
    spec,
    subject,
)


def _hash(desired_objects: list[dict[str, object]]) -> str:
    for o in desired_objects:
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "demo-server":  # type: ignore[index]
            return str(o["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH])  # type: ignore[index]
    raise AssertionError("no server Deployment")


def test_inline_config_becomes_a_configmap() -> None:
    cfg = {"graphs": {"agent": "./agent.py:graph"}, "env": {"A": "1"}}
    d = rendered(spec(graphs={"inline": cfg}))
    cm = find(d, "ConfigMap", "demo-config")
    assert json.loads(cm["data"]["langgraph.json"]) == cfg


def test_config_change_changes_the_pod_template_hash_and_nothing_else_does() -> None:
    a = rendered(spec(graphs={"inline": {"graphs": {"agent": "./a.py:g"}}}))
    b = rendered(spec(graphs={"inline": {"graphs": {"agent": "./b.py:g"}}}))
    same = rendered(
        spec(graphs={"inline": {"graphs": {"agent": "./a.py:g"}}}, server={"replicas": 3})
    )
    assert _hash(a.objects) != _hash(b.objects)
    assert _hash(a.objects) == _hash(same.objects)


def test_configmap_reference_is_mounted_and_hashed_from_its_content() -> None:
    s = spec(graphs={"configMapRef": {"name": "user-cfg", "key": "lg.json"}})
    cm_a = {"data": {"lg.json": '{"graphs": {"a": "./a.py:g"}}'}}
    cm_b = {"data": {"lg.json": '{"graphs": {"a": "./b.py:g"}}'}}
    da = render(subject(), s, Observed(graphs_config_map=cm_a), PASSWORDS, IMAGES)
    db = render(subject(), s, Observed(graphs_config_map=cm_b), PASSWORDS, IMAGES)
    assert not any(o["kind"] == "ConfigMap" for o in da.objects)
    vol = find(da, "Deployment", "demo-server")["spec"]["template"]["spec"]["volumes"][0]
    assert vol["configMap"] == {
        "name": "user-cfg",
        "items": [{"key": "lg.json", "path": "langgraph.json"}],
    }
    assert _hash(da.objects) != _hash(db.objects)


def test_rotating_an_external_uri_rolls_the_pods() -> None:
    s = spec(**EXTERNAL)
    before = wiring(subject(), s, external_observed())
    after = wiring(
        subject(),
        s,
        Observed(
            postgres_secret=secret("pg", uri="postgresql://u:NEW@db/x"),
            redis_secret=external_observed().redis_secret,
        ),
    )
    assert before.config_hash != after.config_hash


def test_reference_problems() -> None:
    s = spec(**EXTERNAL)
    problems = check_references(s, Observed())
    assert [(p.condition, p.reason) for p in problems] == [
        ("DatabaseReady", "SecretNotFound"),
        ("RedisReady", "SecretNotFound"),
    ]
    problems = check_references(
        s, Observed(postgres_secret=secret("pg", url="x"), redis_secret=secret("rd", uri="y"))
    )
    assert [(p.reason, p.message) for p in problems] == [
        ("SecretKeyMissing", "postgres.external Secret 'pg' has no key 'uri'")
    ]
    assert check_references(s, external_observed()) == []


def test_configmap_reference_problems() -> None:
    s = spec(graphs={"configMapRef": {"name": "c"}})
    maps: list[dict[str, Any]] = [
        {"data": {}},
        {"data": {"langgraph.json": "{nope"}},
        {"data": {"langgraph.json": "{}"}},
    ]
    reasons = [check_references(s, Observed(graphs_config_map=cm))[0].reason for cm in maps]
    assert reasons == ["ConfigMapKeyMissing", "InvalidConfig", "InvalidConfig"]
    assert check_references(s, Observed())[0].reason == "ConfigMapNotFound"
    ok = {"data": {"langgraph.json": '{"graphs": {"a": "./a.py:g"}}'}}
    assert check_references(s, Observed(graphs_config_map=ok)) == []


def test_references_lists_the_user_objects_to_read() -> None:
    s = spec(graphs={"configMapRef": {"name": "cfg"}}, **EXTERNAL)
    refs = references(s)
    assert {k: (r.kind, r.name) for k, r in refs.items()} == {
        "graphs_config_map": ("ConfigMap", "cfg"),
        "postgres_secret": ("Secret", "pg"),
        "redis_secret": ("Secret", "rd"),
    }
    assert references(spec()) == {}
