"""Bundled Postgres and Redis (dev and evaluation) and their generated credentials.

The credentials Secret is created once and never rotated: the render receives
the live Secret and keeps every key it already has. The Postgres PVC is a
separate object (not a volumeClaimTemplate) so it can outlive the
AgentDeployment: with ``keepOnDelete`` it has no owner reference, and neither
has the Secret holding its password.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from berth_operator.api.agentdeployment import AgentDeploymentSpec, BundledPostgres, BundledRedis
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import (
    Subject,
    metadata,
    pod_labels,
    prune_none,
    selector_labels,
)
from berth_operator.render.names import ChildNames

PG_USER = "berth"
PG_DB = "berth"
PG_PORT = 5432
REDIS_PORT = 6379
PG_PASSWORD_KEY = "postgres-password"
DATABASE_URI_KEY = "database-uri"
REDIS_PASSWORD_KEY = "redis-password"
REDIS_URI_KEY = "redis-uri"
KEEP_ANNOTATION = "berth.dev/keep-on-delete"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def keeps_on_delete(spec: AgentDeploymentSpec) -> bool:
    """Whether the database volume and its credentials outlive the AgentDeployment."""
    return spec.postgres.bundled is not None and spec.postgres.bundled.storage.keep_on_delete


def service_host(subject: Subject, service: str) -> str:
    return f"{service}.{subject.namespace}.svc.cluster.local"


def credentials_secret(
    subject: Subject,
    spec: AgentDeploymentSpec,
    names: ChildNames,
    existing: Mapping[str, Any] | None,
    new_passwords: Mapping[str, str],
) -> dict[str, Any] | None:
    """The generated Secret of the bundled stores, or None when both are external.

    Keys already present in ``existing`` (its base64 ``data``) are kept verbatim;
    only missing ones are filled from ``new_passwords`` (random, chosen by the caller).
    """
    if spec.postgres.bundled is None and spec.redis.bundled is None:
        return None
    data: dict[str, str] = dict((existing or {}).get("data") or {})

    def password(key: str) -> str:
        if key in data:
            return base64.b64decode(data[key]).decode()
        data[key] = _b64(new_passwords[key])
        return new_passwords[key]

    wanted: set[str] = set()
    if spec.postgres.bundled is not None:
        pw = password(PG_PASSWORD_KEY)
        host = service_host(subject, names.postgres)
        uri = f"postgresql://{PG_USER}:{pw}@{host}:{PG_PORT}/{PG_DB}?sslmode=disable"
        data.setdefault(DATABASE_URI_KEY, _b64(uri))
        wanted |= {PG_PASSWORD_KEY, DATABASE_URI_KEY}
    if spec.redis.bundled is not None:
        pw = password(REDIS_PASSWORD_KEY)
        uri = f"redis://:{pw}@{service_host(subject, names.redis)}:{REDIS_PORT}/0"
        data.setdefault(REDIS_URI_KEY, _b64(uri))
        wanted |= {REDIS_PASSWORD_KEY, REDIS_URI_KEY}
    keep = keeps_on_delete(spec)
    meta = metadata(
        subject,
        names.credentials,
        "credentials",
        owned=not keep,
        annotations={KEEP_ANNOTATION: "true"} if keep else None,
    )
    # Keys of a store that became external stay (never rotate, never lose a password).
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {k: data[k] for k in sorted(set(data) | wanted)},
    }


def postgres_pvc(subject: Subject, bundled: BundledPostgres, names: ChildNames) -> dict[str, Any]:
    keep = bundled.storage.keep_on_delete
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(
            subject,
            names.postgres_pvc,
            "database",
            app="postgres",
            owned=not keep,
            annotations={KEEP_ANNOTATION: "true"} if keep else None,
        ),
        "spec": prune_none(
            {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": str(bundled.storage.size)}},
                "storageClassName": bundled.storage.storage_class_name,
            }
        ),
    }


def postgres_service(subject: Subject, names: ChildNames) -> dict[str, Any]:
    """Headless: the StatefulSet's stable network identity."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(subject, names.postgres, "database", app="postgres"),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(subject, "database"),
            "ports": [
                {"name": "postgres", "port": PG_PORT, "targetPort": "postgres", "protocol": "TCP"}
            ],
        },
    }


def postgres_statefulset(
    subject: Subject, bundled: BundledPostgres, names: ChildNames, images: ImageDefaults
) -> dict[str, Any]:
    labels = pod_labels(subject, "database", "postgres")
    secret = {"name": names.credentials, "key": PG_PASSWORD_KEY}
    ready = {
        "exec": {"command": ["pg_isready", "-U", PG_USER, "-d", PG_DB, "-h", "127.0.0.1"]},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
    }
    container = {
        "name": "postgres",
        "image": bundled.image or images.postgres,
        "imagePullPolicy": images.pull_policy,
        "ports": [{"name": "postgres", "containerPort": PG_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "POSTGRES_USER", "value": PG_USER},
            {"name": "POSTGRES_DB", "value": PG_DB},
            {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": secret}},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "readinessProbe": ready,
        "livenessProbe": {**ready, "initialDelaySeconds": 30, "periodSeconds": 10},
        "resources": bundled.resources.wire() if bundled.resources else None,
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(subject, names.postgres, "database", app="postgres"),
        "spec": {
            "serviceName": names.postgres,
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(subject, "database")},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [prune_none(container)],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": names.postgres_pvc}}
                    ],
                },
            },
        },
    }


def redis_service(subject: Subject, names: ChildNames) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(subject, names.redis, "cache", app="redis"),
        "spec": {
            "selector": selector_labels(subject, "cache"),
            "ports": [
                {"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}
            ],
        },
    }


def redis_deployment(
    subject: Subject, bundled: BundledRedis, names: ChildNames, images: ImageDefaults
) -> dict[str, Any]:
    labels = pod_labels(subject, "cache", "redis")
    probe = {"tcpSocket": {"port": "redis"}, "periodSeconds": 5, "timeoutSeconds": 3}
    container = {
        "name": "redis",
        "image": bundled.image or images.redis,
        "imagePullPolicy": images.pull_policy,
        "args": ["--requirepass", "$(REDIS_PASSWORD)", "--save", "", "--appendonly", "no"],
        "env": [
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {
                    "secretKeyRef": {"name": names.credentials, "key": REDIS_PASSWORD_KEY}
                },
            }
        ],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "periodSeconds": 10},
        "resources": bundled.resources.wire() if bundled.resources else None,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(subject, names.redis, "cache", app="redis"),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(subject, "cache")},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [prune_none(container)]},
            },
        },
    }
