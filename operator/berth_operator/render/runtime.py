"""The agent server itself: ServiceAccount, config, Deployments, Service, PDBs, HPA.

Runtime Pod contract (berth-runtime): ``berth-runtime serve|api|worker --config
/app/config/langgraph.json``, env ``DATABASE_URI``/``REDIS_URI`` from Secrets,
``N_JOBS_PER_WORKER``, ``PORT``; readiness and liveness ``GET /ok`` on the port.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from berth_operator.api.agentdeployment import AgentDeploymentSpec
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import (
    CONFIG_HASH,
    Subject,
    metadata,
    pod_labels,
    prune_none,
    selector_labels,
)
from berth_operator.render.names import ChildNames
from berth_operator.render.sandbox import access as sandbox_access

CONFIG_DIR = "/app/config"
CONFIG_FILE = "langgraph.json"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_FILE}"
Role = Literal["serve", "api", "worker"]


@dataclass(frozen=True)
class SecretKey:
    name: str
    key: str


@dataclass(frozen=True)
class Wiring:
    """Where the runtime Pods get their connection strings and config from."""

    database: SecretKey
    redis: SecretKey
    config_map: str
    config_key: str
    config_hash: str


def langgraph_json(spec: AgentDeploymentSpec) -> str | None:
    """The inline `langgraph.json`, serialized stably (None when a ConfigMap holds it)."""
    inline = spec.graphs.inline
    if inline is None:
        return None
    return json.dumps(inline.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def service_account(subject: Subject, names: ChildNames) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(subject, names.service_account, "server"),
    }


def config_map(subject: Subject, names: ChildNames, content: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(subject, names.config, "config"),
        "data": {CONFIG_FILE: content},
    }


def _env(
    subject: Subject, spec: AgentDeploymentSpec, wiring: Wiring, role: Role
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {
            "name": "DATABASE_URI",
            "valueFrom": {
                "secretKeyRef": {"name": wiring.database.name, "key": wiring.database.key}
            },
        },
        {
            "name": "REDIS_URI",
            "valueFrom": {"secretKeyRef": {"name": wiring.redis.name, "key": wiring.redis.key}},
        },
        {"name": "PORT", "value": str(spec.server.port)},
    ]
    if role != "api":
        env.append({"name": "N_JOBS_PER_WORKER", "value": str(spec.workers.jobs_per_worker)})
    grace = str(spec.workers.shutdown_grace_seconds)
    env.append({"name": "BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS", "value": grace})
    env.extend(identity_env(subject))
    env.extend(_sandbox_env(subject, spec))
    env.extend(agent_auth_env(spec))
    env.extend(e.wire() for e in spec.env or ())
    return env


def identity_env(subject: Subject) -> list[dict[str, Any]]:
    """Which AgentDeployment the runtime serves: it syncs the AgentCrons that name it."""
    return [
        {"name": "BERTH_DEPLOYMENT_NAME", "value": subject.name},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]


def _sandbox_env(subject: Subject, spec: AgentDeploymentSpec) -> list[dict[str, Any]]:
    """`spec.sandbox` for berth_runtime.sandbox (before the user's env, which may override),
    and the key it derives executor tokens from (see `render.sandbox.access`)."""
    sb = spec.sandbox
    if sb is None:
        return []
    return [
        {"name": "BERTH_SANDBOX_POOL", "value": sb.pool},
        {"name": "BERTH_SANDBOX_SCOPE", "value": sb.scope.lower()},
        {"name": "BERTH_SANDBOX_TTL_SECONDS", "value": str(sb.ttl_seconds)},
        {"name": "BERTH_SANDBOX_READY_TIMEOUT_SECONDS", "value": str(sb.ready_timeout_seconds)},
        {
            "name": "BERTH_SANDBOX_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        sandbox_access.key_env(ChildNames(subject.name)),
    ]


def agent_auth_env(spec: AgentDeploymentSpec) -> list[dict[str, Any]]:
    """`spec.agentAuth` for berth_runtime.agent_auth: the providers as JSON, each client
    secret and the encryption keys from their Secrets (never copied into the spec or JSON)."""
    aa = spec.agent_auth
    if aa is None:
        return []

    def secret(name: str, ref: Any) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}

    env: list[dict[str, Any]] = [secret("BERTH_AGENT_AUTH_KEYS", aa.keys_secret_ref)]
    if aa.api_key_secret_ref is not None:
        env.append(secret("BERTH_AGENT_AUTH_API_KEY", aa.api_key_secret_ref))
    providers: dict[str, Any] = {}
    for i, p in enumerate(aa.providers):
        secret_env = None
        if p.client_secret_ref is not None:
            secret_env = f"BERTH_AGENT_AUTH_CLIENT_SECRET_{i}"
            env.append(secret(secret_env, p.client_secret_ref))
        providers[p.name] = p.runtime_json(secret_env)
    env.append(
        {
            "name": "BERTH_AGENT_AUTH_PROVIDERS",
            "value": json.dumps(providers, sort_keys=True, separators=(",", ":")),
        }
    )
    return env


def _env_from(spec: AgentDeploymentSpec) -> list[dict[str, Any]]:
    out = [e.wire() for e in spec.env_from or ()]
    out.extend({"secretRef": {"name": s.name}} for s in spec.secret_refs or ())
    return out


def _probe(initial_delay: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/ok", "port": "http"},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 3,
    }


# Time the kubelet allows beyond the runtime's own grace: re-queueing the runs left and
# closing connections happen after the grace ends.
HAND_OVER_SECONDS = 15


def termination_grace_seconds(spec: AgentDeploymentSpec) -> int:
    """The Pod's grace: the runtime's (draining runs, open streams) plus the hand-over."""
    return spec.workers.shutdown_grace_seconds + HAND_OVER_SECONDS


def pod_template(
    subject: Subject,
    spec: AgentDeploymentSpec,
    names: ChildNames,
    wiring: Wiring,
    role: Role,
    images: ImageDefaults,
) -> dict[str, Any]:
    """The Pod template of a runtime Deployment for one role; an unset image (or pull
    policy) is the operator's configured default."""
    component = "worker" if role == "worker" else "server"
    resources = (spec.workers.resources if role == "worker" else spec.server.resources) or None
    pod = spec.pod
    container: dict[str, Any] = {
        "name": "runtime",
        "image": spec.image or images.runtime,
        "imagePullPolicy": spec.image_pull_policy or images.pull_policy,
        "command": ["berth-runtime"],
        "args": [role, "--config", CONFIG_PATH],
        "ports": [{"name": "http", "containerPort": spec.server.port, "protocol": "TCP"}],
        "env": _env(subject, spec, wiring, role),
        "envFrom": _env_from(spec) or None,
        "resources": resources.wire() if resources else None,
        "readinessProbe": _probe(initial_delay=2, period=5, failures=3),
        "livenessProbe": _probe(initial_delay=10, period=10, failures=6),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
        "securityContext": pod.container_security_context if pod else None,
    }
    labels = {**((pod.labels if pod else None) or {}), **pod_labels(subject, component)}
    annotations = {**((pod.annotations if pod else None) or {}), CONFIG_HASH: wiring.config_hash}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": (pod.service_account_name if pod else None) or names.service_account,
        "terminationGracePeriodSeconds": termination_grace_seconds(spec),
        "containers": [container],
        "volumes": [
            {
                "name": "config",
                "configMap": {
                    "name": wiring.config_map,
                    "items": [{"key": wiring.config_key, "path": CONFIG_FILE}],
                },
            }
        ],
    }
    if pod is not None:
        pod_spec.update(
            {
                "nodeSelector": pod.node_selector,
                "tolerations": [t.wire() for t in pod.tolerations] if pod.tolerations else None,
                "affinity": pod.affinity,
                "securityContext": pod.security_context,
                "imagePullSecrets": [s.wire() for s in pod.image_pull_secrets]
                if pod.image_pull_secrets
                else None,
            }
        )
    template: dict[str, Any] = prune_none(
        {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}
    )
    return template


def deployment(
    subject: Subject,
    spec: AgentDeploymentSpec,
    names: ChildNames,
    wiring: Wiring,
    role: Role,
    images: ImageDefaults,
) -> dict[str, Any]:
    """The server (``serve``/``api``) or worker Deployment; no replicas when an HPA owns them."""
    component = "worker" if role == "worker" else "server"
    name = names.worker if role == "worker" else names.server
    if role == "worker":
        replicas = None if spec.hpa_owns_workers else spec.workers.replicas
    else:
        replicas = None if spec.hpa_owns_server else spec.server.replicas
    body: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": selector_labels(subject, component)},
        "template": pod_template(subject, spec, names, wiring, role, images),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(subject, name, component),
        "spec": prune_none(body),
    }


def service(subject: Subject, spec: AgentDeploymentSpec, names: ChildNames) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(
            subject, names.service, "server", annotations=spec.service.annotations
        ),
        "spec": {
            "type": spec.service.type,
            "selector": selector_labels(subject, "server"),
            "ports": [
                {"name": "http", "port": spec.service.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def pod_disruption_budget(subject: Subject, names: ChildNames, component: str) -> dict[str, Any]:
    """At most one Pod of the component voluntarily evicted at a time."""
    name = names.worker if component == "worker" else names.server
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(subject, name, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(subject, component)},
        },
    }


def horizontal_pod_autoscaler(
    subject: Subject, spec: AgentDeploymentSpec, names: ChildNames
) -> dict[str, Any] | None:
    a = spec.autoscaling
    if a is None or not a.enabled or a.scaler == "External":
        return None  # External: a KEDA ScaledObject (or another autoscaler) owns the replicas
    target = names.worker if a.target == "Workers" else names.server
    component = "worker" if a.target == "Workers" else "server"
    metrics: list[dict[str, Any]] = []
    if a.target_cpu_utilization_percentage is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": a.target_cpu_utilization_percentage,
                    },
                },
            }
        )
    if a.queue_depth is not None:
        metrics.append(
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": a.queue_depth.metric_name,
                        "selector": {
                            "matchLabels": {
                                "namespace": subject.namespace,
                                "agentdeployment": subject.name,
                            }
                        },
                    },
                    "target": {
                        "type": "AverageValue",
                        "averageValue": str(a.queue_depth.target_pending_runs_per_replica),
                    },
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(subject, names.hpa, component),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": metrics,
        },
    }
