"""The chart's operations kit (monitors, alerts, dashboard, KEDA, aggregated roles) and the
values schema's messages for bad values."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from berth_operator import metrics as operator_metrics
from berth_operator.render.names import ChildNames
from berth_runtime.metrics import Histogram, Snapshot, WorkerStats, render_prometheus
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.opskit import (
    ALL_ON,
    CHART,
    REPO,
    alert_names,
    dashboard,
    dashboard_exprs,
    helm,
    metric_names,
    render,
    rule_groups,
    used_metric_names,
)
from tests.unit.operator.factories import EXTERNAL, external_observed, find, rendered, spec

VALIDATE = str(REPO / ".venv" / "bin" / "kubernetes-validate")
NAMESPACED = ["--set", "watch.allNamespaces=false", "--set", "watch.namespaces={team-a,team-b}"]
KIT_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ScaledObject"}
EXPECTED_ALERTS = {
    "BerthRunsPendingTooLong",
    "BerthRunErrorRate",
    "BerthWorkerHeartbeatsLost",
    "BerthPostgresUnreachable",
    "BerthSandboxPoolExhausted",
    "BerthReconcileErrors",
}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def sample_names(exposition: bytes) -> set[str]:
    return {
        s.name for fam in text_string_to_metric_families(exposition.decode()) for s in fam.samples
    }


@pytest.mark.parametrize("extra", [[], NAMESPACED], ids=["cluster", "namespaced"])
def test_lint_and_template_pass_with_every_toggle_on(extra: list[str]) -> None:
    lint = helm("lint", str(CHART), "--strict", *ALL_ON, *extra)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    docs = render(*ALL_ON, *extra)
    kinds = {d["kind"] for d in docs}
    assert kinds >= KIT_KINDS
    # What the Kubernetes schema knows (not the Prometheus Operator's or KEDA's kinds) is
    # strictly valid.
    core = "".join(
        "---\n" + json.dumps(d) + "\n"
        for d in docs
        if d["kind"] not in KIT_KINDS and d["kind"] != "CustomResourceDefinition"
    )
    result = subprocess.run(
        [VALIDATE, "--strict", "-k", "1.36.0", "--quiet", "-"],
        input=core,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kit_is_off_by_default() -> None:
    docs = render()
    assert not [d for d in docs if d["kind"] in KIT_KINDS]
    roles = {d["metadata"]["name"] for d in by_kind(docs, "ClusterRole")}
    assert roles == {"berth-operator"}
    assert not [d for d in docs if d["kind"] == "Service"]
    assert not [d for d in docs if d["kind"] == "ConfigMap"]
    op = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert not [a for a in op["args"] if a.startswith("--metrics-port")]
    assert [p["name"] for p in op["ports"]] == ["health"]


def test_operator_metrics_service_and_service_monitor() -> None:
    docs = render(
        "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.operator.port=9123"
    )
    op = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert "--metrics-port=9123" in op["args"]
    assert {"name": "metrics", "containerPort": 9123, "protocol": "TCP"} in op["ports"]
    (svc,) = by_kind(docs, "Service")
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    assert (
        svc["spec"]["selector"] == by_kind(docs, "Deployment")[0]["spec"]["selector"]["matchLabels"]
    )
    (sm,) = by_kind(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    labels = svc["metadata"]["labels"]
    assert all(labels[k] == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["endpoints"][0]["honorLabels"] is True
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["berth-system"]}


def test_pod_monitor_selects_the_runtime_pods_the_operator_renders() -> None:
    desired = rendered(spec(**EXTERNAL, workers={"enabled": True}), external_observed())
    (pm,) = by_kind(render("--set", "metrics.podMonitor.enabled=true"), "PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    selector = pm["spec"]["selector"]["matchLabels"]
    endpoint = pm["spec"]["podMetricsEndpoints"][0]
    for name in ("demo-server", "demo-worker"):
        pod = find(desired, "Deployment", name)["spec"]["template"]
        assert all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items()), name
        ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        assert endpoint["port"] in ports
        assert pod["metadata"]["labels"]["berth.dev/agentdeployment"] == "demo"
    assert endpoint["path"] == "/metrics"
    targets = {r["targetLabel"]: r["sourceLabels"][0] for r in endpoint["relabelings"]}
    assert targets["agentdeployment"] == "__meta_kubernetes_pod_label_berth_dev_agentdeployment"
    (scoped,) = by_kind(
        render("--set", "metrics.podMonitor.enabled=true", *NAMESPACED), "PodMonitor"
    )
    assert scoped["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}


def test_prometheus_rule_has_the_alerts_and_takes_thresholds() -> None:
    groups = rule_groups()
    assert alert_names(groups) == EXPECTED_ALERTS
    for rule in (r for g in groups for r in g["rules"]):
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook_url"].endswith(
            "#" + rule["alert"].lower()
        )
    tuned = rule_groups(
        "--set", "metrics.prometheusRule.pendingSeconds=42",
        "--set", "metrics.prometheusRule.errorPercent=25",
        "--set", "metrics.prometheusRule.for=2m",
        "--set", "metrics.prometheusRule.additionalLabels.team=agents",
    )  # fmt: skip
    rules = {r["alert"]: r for g in tuned for r in g["rules"]}
    assert rules["BerthRunsPendingTooLong"]["expr"].endswith("> 42")
    assert rules["BerthRunErrorRate"]["expr"].endswith("> 0.25")
    assert rules["BerthPostgresUnreachable"]["for"] == "2m"
    assert all(r["labels"]["team"] == "agents" for r in rules.values())


def test_dashboard_config_map_for_the_grafana_sidecar() -> None:
    docs = render(
        "--set", "metrics.dashboard.enabled=true", "--set", "metrics.dashboard.namespace=monitoring"
    )
    (cm,) = by_kind(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert json.loads(cm["data"]["berth.json"]) == dashboard()
    titles = " | ".join(p["title"] for p in dashboard()["panels"]).lower()
    for wanted in ("by status", "queue depth", "wait", "first-event", "sandbox pools", "reconcile"):
        assert wanted in titles, wanted


def test_every_metric_the_kit_reads_is_one_berth_exports() -> None:
    """Names only: the runtime's exposition and the operator's registry as the code renders
    them (tests/integration/runtime/test_ops_metrics.py checks a real runtime's /metrics)."""
    stats = WorkerStats()
    stats.wait.observe(0.2)
    runtime = sample_names(
        render_prometheus(Snapshot(finished={"success": 1, "error": 1}, stats=stats))
    )
    operator_metrics.pool_observed("ns", "pool", warm=1, claimed=0, max_size=2)
    try:
        operator = sample_names(generate_latest(operator_metrics.REGISTRY))
    finally:
        operator_metrics.pool_gone("ns", "pool")
    used = used_metric_names()
    assert used and used <= runtime | operator, used - runtime - operator
    # Each panel reads at least one Berth metric.
    for panel in dashboard()["panels"]:
        assert metric_names([t["expr"] for t in panel["targets"]]), panel["title"]
    assert metric_names(dashboard_exprs(dashboard())) >= {
        "berth_runs_finished_total",
        "berth_run_queue_wait_seconds_bucket",
        "berth_run_first_event_seconds_bucket",
        "berth_sandboxpool_warm_pods",
        "berth_sandboxpool_claimed_pods",
        "berth_operator_reconciles_total",
    }


def test_pool_gauges_go_with_the_pool() -> None:
    operator_metrics.pool_observed("ns", "gone", warm=2, claimed=1, max_size=4)
    text = generate_latest(operator_metrics.REGISTRY).decode()
    assert 'berth_sandboxpool_max_pods{namespace="ns",sandboxpool="gone"} 4.0' in text
    operator_metrics.pool_gone("ns", "gone")
    operator_metrics.pool_gone("ns", "gone")  # twice: no error
    assert 'sandboxpool="gone"' not in generate_latest(operator_metrics.REGISTRY).decode()


def test_histogram_buckets_are_cumulative() -> None:
    h = Histogram(buckets=(0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0, -1.0):
        h.observe(v)
    assert h.cumulative() == [("0.1", 3.0), ("1.0", 4.0), ("+Inf", 5.0)]
    assert h.sum == pytest.approx(3.65)


def test_runtime_reports_postgres_down_without_stale_queue_numbers() -> None:
    text = render_prometheus(Snapshot(postgres_up=False, pending=5)).decode()
    assert "berth_postgres_up 0.0" in text
    assert "berth_runs_pending" not in text and "berth_worker_slots" in text


def test_keda_scaled_objects_target_the_operators_deployments() -> None:
    docs = render(*ALL_ON)
    objs = {d["metadata"]["name"]: d for d in by_kind(docs, "ScaledObject")}
    assert set(objs) == {"agent-worker", "web-server"}
    worker, server = objs["agent-worker"], objs["web-server"]
    assert worker["metadata"]["namespace"] == "team-a"
    assert worker["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "agent-worker",
    }
    assert worker["spec"]["minReplicaCount"] == 0  # an explicit 0 is kept (scale to zero)
    assert server["spec"]["minReplicaCount"] == 1 and server["spec"]["maxReplicaCount"] == 3
    trigger = worker["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == (
        'max(berth_runs_pending{namespace="team-a",agentdeployment="agent"}) or vector(0)'
    )
    assert trigger["metadata"]["threshold"] == "10"
    names = ChildNames("agent")
    assert worker["spec"]["scaleTargetRef"]["name"] == names.worker
    assert server["spec"]["scaleTargetRef"]["name"] == ChildNames("web").server


def test_external_scaler_leaves_replicas_and_renders_no_hpa() -> None:
    external = spec(
        **EXTERNAL,
        workers={"enabled": True, "replicas": 2},
        autoscaling={"target": "Workers", "scaler": "External", "maxReplicas": 10},
    )
    desired = rendered(external, external_observed())
    assert not [o for o in desired.objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert "replicas" not in find(desired, "Deployment", "demo-worker")["spec"]
    hpa = spec(
        **EXTERNAL,
        workers={"enabled": True},
        autoscaling={"target": "Workers", "maxReplicas": 10, "queueDepth": {}},
    )
    assert [
        o
        for o in rendered(hpa, external_observed()).objects
        if o["kind"] == "HorizontalPodAutoscaler"
    ]
    with pytest.raises(ValueError, match="targetCPUUtilizationPercentage or queueDepth"):
        spec(autoscaling={"maxReplicas": 3})


def test_aggregated_roles_carry_the_aggregation_labels() -> None:
    roles = {
        d["metadata"]["name"]: d
        for d in by_kind(render("--set", "aggregatedRoles.enabled=true"), "ClusterRole")
    }
    label = "rbac.authorization.k8s.io/aggregate-to-{}"
    assert {k for k, v in roles["berth-view"]["metadata"]["labels"].items() if v == "true"} >= {
        label.format(r) for r in ("view", "edit", "admin")
    }
    assert roles["berth-edit"]["metadata"]["labels"].get(label.format("view")) is None
    assert roles["berth-admin"]["metadata"]["labels"].get(label.format("edit")) is None
    kinds = {"agentdeployments", "agentcrons", "sandboxpools", "sandboxclaims"}
    view = {v for r in roles["berth-view"]["rules"] for v in r["verbs"]}
    assert view == {"get", "list", "watch"}
    assert kinds <= set(roles["berth-edit"]["rules"][0]["resources"])


# -- the values schema -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ("replicaCount=-1", "at '/replicaCount': minimum: got -1, want 0"),
        ("replicaCount=two", "at '/replicaCount': got string, want integer"),
        ("operator.workers=0", "at '/operator/workers'"),
        (
            "operator.logLevel=loud",
            "at '/operator/logLevel': value must be one of 'info', 'debug', 'warning'",
        ),
        ("operator.livenessPort=70000", "at '/operator/livenessPort': maximum"),
        (
            "operator.resyncSecond=5",
            "at '/operator': additional properties 'resyncSecond' not allowed",
        ),
        ("watch.allNamespaces=maybe", "at '/watch/allNamespaces': got string, want boolean"),
        ("crds.enable=true", "at '/crds': additional properties 'enable' not allowed"),
        ("rbac.create=1", "at '/rbac/create': got number, want boolean"),
        (
            "serviceAccount.annotations.a=1",
            "at '/serviceAccount/annotations/a': got number, want string",
        ),
        ("imagePullSecrets[0].nam=x", "at '/imagePullSecrets/0'"),
        ("resources.request.cpu=1", "at '/resources': additional properties 'request' not allowed"),
        ("metric.enabled=true", "at '': additional properties 'metric' not allowed"),
        (
            "metrics.podMonitor.enabled=yes",
            "at '/metrics/podMonitor/enabled': got string, want boolean",
        ),
        ("metrics.podMonitor.interval=30", "at '/metrics/podMonitor/interval'"),
        (
            "metrics.serviceMonitor.labels.release=1",
            "at '/metrics/serviceMonitor/labels/release': got number, want string",
        ),
        ("metrics.operator.port=0", "at '/metrics/operator/port': minimum: got 0, want 1"),
        ("metrics.prometheusRule.for=5 minutes", "at '/metrics/prometheusRule/for'"),
        (
            "metrics.prometheusRule.errorPercent=150",
            "at '/metrics/prometheusRule/errorPercent': maximum",
        ),
        ("metrics.prometheusRule.pendingSeconds=-1", "at '/metrics/prometheusRule/pendingSeconds'"),
        ("metrics.dashboard.namespace=Monitoring", "at '/metrics/dashboard/namespace'"),
        (
            "metrics.dashbord.enabled=true",
            "at '/metrics': additional properties 'dashbord' not allowed",
        ),
        ("aggregatedRoles.enabled=on", "at '/aggregatedRoles/enabled': got string, want boolean"),
        (
            "keda.scaledObjects[0].agentDeployment=agent",
            "at '/keda/scaledObjects/0': missing properties",
        ),
        ("keda.enabled=true", "at '/keda': additional properties 'enabled' not allowed"),
    ],
)
def test_the_schema_refuses_bad_values_naming_the_field(setting: str, error: str) -> None:
    for command in (["template", "berth"], ["lint", "--strict"]):
        result = helm(*command, str(CHART), "--set", setting)
        assert result.returncode != 0, (command, setting)
        assert error in result.stderr + result.stdout, result.stderr + result.stdout


@pytest.mark.parametrize(
    ("so", "error"),
    [
        (
            {"target": "Both"},
            "at '/keda/scaledObjects/0/target': value must be one of 'Server', 'Workers'",
        ),
        (
            {"maxReplicaCount": 0},
            "at '/keda/scaledObjects/0/maxReplicaCount': minimum: got 0, want 1",
        ),
        ({"minReplicaCount": -1}, "at '/keda/scaledObjects/0/minReplicaCount'"),
        (
            {"prometheusServerAddress": "prometheus:9090"},
            "at '/keda/scaledObjects/0/prometheusServerAddress'",
        ),
        ({"agentDeployment": "My_Agent"}, "at '/keda/scaledObjects/0/agentDeployment'"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    ],
)
def test_the_schema_refuses_bad_scaled_objects(
    so: dict[str, Any], error: str, tmp_path: Any
) -> None:
    good = {
        "agentDeployment": "agent",
        "namespace": "team-a",
        "maxReplicaCount": 4,
        "prometheusServerAddress": "http://prometheus:9090",
    }
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"keda": {"scaledObjects": [{**good, **so}]}}))
    result = helm("template", "berth", str(CHART), "-f", str(values))
    assert result.returncode != 0
    assert error in result.stderr, result.stderr
    values.write_text(json.dumps({"keda": {"scaledObjects": [good]}}))
    assert helm("template", "berth", str(CHART), "-f", str(values)).returncode == 0


def test_an_umbrella_charts_globals_are_accepted() -> None:
    result = helm("template", "berth", str(CHART), "--set", "global.storageClass=fast")
    assert result.returncode == 0, result.stderr
