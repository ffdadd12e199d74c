"""Runtime children: the Pod contract, replicas vs HPA, Service, PDB, HPA, pod overrides."""

from __future__ import annotations

from typing import Any

from berth_operator.render.meta import APPLIED_HASH, CONFIG_HASH, INSTANCE_LABEL
from berth_operator.render.names import ChildRef

from tests.unit.operator.factories import (
    EXTERNAL,
    external_observed,
    find,
    rendered,
    spec,
)


def _container(deploy: dict[str, Any]) -> dict[str, Any]:
    containers = deploy["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container["env"]}


def test_combined_server_runs_serve_with_the_contract() -> None:
    d = rendered()
    deploy = find(d, "Deployment", "demo-server")
    c = _container(deploy)
    assert c["command"] == ["berth-runtime"]
    assert c["args"] == ["serve", "--config", "/app/config/langgraph.json"]
    env = _env(c)
    assert env["DATABASE_URI"] == {
        "name": "DATABASE_URI",
        "valueFrom": {"secretKeyRef": {"name": "demo-credentials", "key": "database-uri"}},
    }
    assert env["REDIS_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "demo-credentials",
        "key": "redis-uri",
    }
    assert "value" not in env["DATABASE_URI"] and "value" not in env["REDIS_URI"]
    assert env["PORT"]["value"] == "8000"
    assert env["N_JOBS_PER_WORKER"]["value"] == "10"
    for probe in (c["readinessProbe"], c["livenessProbe"]):
        assert probe["httpGet"] == {"path": "/ok", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert c["volumeMounts"] == [{"name": "config", "mountPath": "/app/config", "readOnly": True}]
    vol = deploy["spec"]["template"]["spec"]["volumes"][0]
    assert vol["configMap"] == {
        "name": "demo-config",
        "items": [{"key": "langgraph.json", "path": "langgraph.json"}],
    }
    assert deploy["spec"]["replicas"] == 1
    assert ChildRef("apps/v1", "Deployment", "demo-worker") in d.orphans


def test_pods_outlast_the_runtimes_shutdown_grace() -> None:
    """The kubelet must not kill a Pod while its runtime still drains or re-queues runs."""
    d = rendered(spec(workers={"enabled": True, "shutdownGraceSeconds": 40}))
    for name in ("demo-server", "demo-worker"):
        deploy = find(d, "Deployment", name)
        assert deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 55
        env = _env(_container(deploy))
        assert env["BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS"]["value"] == "40"
    default = find(rendered(spec()), "Deployment", "demo-server")["spec"]["template"]["spec"]
    assert default["terminationGracePeriodSeconds"] == 195


def test_split_mode_renders_api_and_worker() -> None:
    d = rendered(spec(workers={"enabled": True, "replicas": 3, "jobsPerWorker": 4}))
    api = _container(find(d, "Deployment", "demo-server"))
    worker_deploy = find(d, "Deployment", "demo-worker")
    worker = _container(worker_deploy)
    assert api["args"][0] == "api" and "N_JOBS_PER_WORKER" not in _env(api)
    assert worker["args"][0] == "worker" and _env(worker)["N_JOBS_PER_WORKER"]["value"] == "4"
    assert worker_deploy["spec"]["replicas"] == 3
    assert worker_deploy["spec"]["selector"]["matchLabels"] == {
        INSTANCE_LABEL: "demo",
        "app.kubernetes.io/component": "worker",
    }
    find(d, "PodDisruptionBudget", "demo-worker")


def test_external_stores_wire_user_secrets_and_skip_bundled_objects() -> None:
    d = rendered(spec(**EXTERNAL), external_observed())
    env = _env(_container(find(d, "Deployment", "demo-server")))
    assert env["DATABASE_URI"]["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "uri"}
    assert env["REDIS_URI"]["valueFrom"]["secretKeyRef"] == {"name": "rd", "key": "uri"}
    kinds = {(o["kind"], o["metadata"]["name"]) for o in d.objects}
    assert ("StatefulSet", "demo-postgres") not in kinds
    assert ("Deployment", "demo-redis") not in kinds
    assert ("Secret", "demo-credentials") not in kinds


def test_hpa_owns_replicas_so_they_are_omitted() -> None:
    s = spec(autoscaling={"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 75})
    d = rendered(s)
    assert "replicas" not in find(d, "Deployment", "demo-server")["spec"]
    hpa = find(d, "HorizontalPodAutoscaler", "demo")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "demo-server",
    }
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 5
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 75},
            },
        }
    ]


def test_queue_depth_autoscaling_targets_workers_with_an_external_metric() -> None:
    s = spec(
        workers={"enabled": True, "replicas": 2},
        autoscaling={
            "target": "Workers",
            "maxReplicas": 9,
            "queueDepth": {"targetPendingRunsPerReplica": 4},
        },
    )
    d = rendered(s)
    assert find(d, "Deployment", "demo-server")["spec"]["replicas"] == 1
    assert "replicas" not in find(d, "Deployment", "demo-worker")["spec"]
    hpa = find(d, "HorizontalPodAutoscaler", "demo")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "demo-worker"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "berth_runs_pending"
    assert metric["external"]["metric"]["selector"]["matchLabels"]["agentdeployment"] == "demo"
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "4"}


def test_disabled_autoscaling_renders_no_hpa_and_keeps_replicas() -> None:
    s = spec(
        server={"replicas": 4},
        autoscaling={"enabled": False, "maxReplicas": 9, "targetCPUUtilizationPercentage": 50},
    )
    d = rendered(s)
    assert find(d, "Deployment", "demo-server")["spec"]["replicas"] == 4
    assert ChildRef("autoscaling/v2", "HorizontalPodAutoscaler", "demo") in d.orphans


def test_service_and_pdb() -> None:
    d = rendered(spec(service={"type": "LoadBalancer", "port": 80, "annotations": {"a": "b"}}))
    svc = find(d, "Service", "demo")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"] == {
        INSTANCE_LABEL: "demo",
        "app.kubernetes.io/component": "server",
    }
    assert svc["metadata"]["annotations"]["a"] == "b"
    pdb = find(d, "PodDisruptionBudget", "demo-server")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]


def test_pod_overrides_and_user_env() -> None:
    s = spec(
        env=[{"name": "LOG_LEVEL", "value": "debug"}],
        envFrom=[{"configMapRef": {"name": "cfg"}}],
        secretRefs=[{"name": "llm-keys"}],
        imagePullPolicy="Always",
        server={"resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
        pod={
            "labels": {"team": "ai", INSTANCE_LABEL: "spoofed"},
            "annotations": {"prometheus.io/scrape": "true"},
            "nodeSelector": {"pool": "agents"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {}},
            "securityContext": {"runAsNonRoot": True},
            "containerSecurityContext": {"readOnlyRootFilesystem": True},
            "serviceAccountName": "custom-sa",
            "imagePullSecrets": [{"name": "regcred"}],
        },
    )
    d = rendered(s)
    deploy = find(d, "Deployment", "demo-server")
    tmpl = deploy["spec"]["template"]
    pod = tmpl["spec"]
    c = _container(deploy)
    assert _env(c)["LOG_LEVEL"]["value"] == "debug"
    assert c["envFrom"] == [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "llm-keys"}}]
    assert c["imagePullPolicy"] == "Always"
    assert c["resources"] == {"requests": {"cpu": "250m", "memory": "256Mi"}}
    assert c["securityContext"] == {"readOnlyRootFilesystem": True}
    assert tmpl["metadata"]["labels"]["team"] == "ai"
    assert tmpl["metadata"]["labels"][INSTANCE_LABEL] == "demo"  # selector labels win
    assert tmpl["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["nodeSelector"] == {"pool": "agents"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["securityContext"] == {"runAsNonRoot": True}
    assert pod["serviceAccountName"] == "custom-sa"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert ChildRef("v1", "ServiceAccount", "demo") in d.orphans


def test_every_child_is_stamped_and_has_no_nulls() -> None:
    def no_nulls(v: Any) -> bool:
        if isinstance(v, dict):
            return all(x is not None and no_nulls(x) for x in v.values())
        if isinstance(v, list):
            return all(no_nulls(x) for x in v)
        return True

    for o in rendered().objects:
        assert APPLIED_HASH in o["metadata"]["annotations"]
        assert no_nulls(o), o["kind"]
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "demo-server":
            assert CONFIG_HASH in o["spec"]["template"]["metadata"]["annotations"]
