"""Bundled Postgres/Redis, generated credentials (created once), PVC retention."""

from __future__ import annotations

import base64

from berth_operator.render.desired import Observed, decode, render
from berth_operator.render.meta import owner_reference
from berth_operator.render.names import ChildRef

from tests.unit.operator.factories import IMAGES, PASSWORDS, find, rendered, spec, subject


def test_credentials_are_generated_with_uris_to_the_bundled_services() -> None:
    d = rendered()
    s = find(d, "Secret", "demo-credentials")
    assert decode(s, "postgres-password") == "pg-secret-1"
    assert decode(s, "database-uri") == (
        "postgresql://berth:pg-secret-1@demo-postgres.ns1.svc.cluster.local:5432/berth?sslmode=disable"
    )
    assert (
        decode(s, "redis-uri") == "redis://:redis-secret-1@demo-redis.ns1.svc.cluster.local:6379/0"
    )


def test_existing_credentials_are_never_rotated() -> None:
    first = find(rendered(), "Secret", "demo-credentials")
    other = {"postgres-password": "different", "redis-password": "different"}
    again = render(subject(), spec(), Observed(credentials=first), other, IMAGES)
    assert find(again, "Secret", "demo-credentials")["data"] == first["data"]


def test_a_store_switched_to_bundled_gets_only_its_missing_key() -> None:
    live = {"data": {"postgres-password": base64.b64encode(b"old").decode()}}
    d = render(
        subject(), spec(redis={"bundled": {}}), Observed(credentials=live), PASSWORDS, IMAGES
    )
    s = find(d, "Secret", "demo-credentials")
    assert decode(s, "postgres-password") == "old"
    assert "old@" in decode(s, "database-uri")
    assert decode(s, "redis-password") == "redis-secret-1"


def test_keep_on_delete_leaves_pvc_and_secret_without_owner() -> None:
    d = rendered()
    pvc = find(d, "PersistentVolumeClaim", "demo-postgres-data")
    secret = find(d, "Secret", "demo-credentials")
    assert "ownerReferences" not in pvc["metadata"]
    assert "ownerReferences" not in secret["metadata"]
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    sts = find(d, "StatefulSet", "demo-postgres")
    assert sts["metadata"]["ownerReferences"] == [owner_reference(subject())]


def test_keep_on_delete_false_makes_them_owned() -> None:
    s = spec(
        postgres={
            "bundled": {
                "storage": {"keepOnDelete": False, "size": "5Gi", "storageClassName": "fast"}
            }
        }
    )
    d = rendered(s)
    pvc = find(d, "PersistentVolumeClaim", "demo-postgres-data")
    assert pvc["metadata"]["ownerReferences"] == [owner_reference(subject())]
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert find(d, "Secret", "demo-credentials")["metadata"]["ownerReferences"]


def test_postgres_statefulset_mounts_a_separate_pvc() -> None:
    d = rendered(spec(postgres={"bundled": {"image": "postgres:16.4"}}))
    sts = find(d, "StatefulSet", "demo-postgres")
    assert "volumeClaimTemplates" not in sts["spec"]
    assert sts["spec"]["serviceName"] == "demo-postgres"
    pod = sts["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "demo-postgres-data"}}
    ]
    (c,) = pod["containers"]
    assert c["image"] == "postgres:16.4"
    env = {e["name"]: e for e in c["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "demo-credentials",
        "key": "postgres-password",
    }
    headless = find(d, "Service", "demo-postgres")
    assert headless["spec"]["clusterIP"] == "None"


def test_redis_uses_official_image_with_password_from_secret() -> None:
    d = rendered()
    deploy = find(d, "Deployment", "demo-redis")
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "redis:7"
    assert c["args"][:2] == ["--requirepass", "$(REDIS_PASSWORD)"]
    assert c["env"][0]["valueFrom"]["secretKeyRef"]["key"] == "redis-password"
    assert find(d, "Service", "demo-redis")["spec"]["ports"][0]["port"] == 6379


def test_switching_postgres_to_external_orphans_the_bundled_objects() -> None:
    d = rendered(
        spec(postgres={"external": {"secretName": "pg"}}),
        Observed(postgres_secret={"data": {"uri": "eA=="}}),
    )
    for ref in (
        ChildRef("apps/v1", "StatefulSet", "demo-postgres"),
        ChildRef("v1", "Service", "demo-postgres"),
        ChildRef("v1", "PersistentVolumeClaim", "demo-postgres-data"),
    ):
        assert ref in d.orphans
    # Redis is still bundled, so the Secret stays (owned now: no database volume to keep).
    assert find(d, "Secret", "demo-credentials")["metadata"]["ownerReferences"]
