"""The chart's operations kit (docs/operations.md) as the tests see it: the chart rendered
with every toggle on, the PrometheusRule's groups, the metric names the dashboard and the
alerts use, and promtool (Debian's prometheus package, installed by hack/ensure-debs.sh)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "berth"
DASHBOARD = CHART / "files" / "dashboards" / "berth.json"

# Every toggle of the kit on (a ScaledObject with minReplicaCount 0 too).
ALL_ON = [
    "--set", "metrics.operator.enabled=true",
    "--set", "metrics.serviceMonitor.enabled=true",
    "--set", "metrics.podMonitor.enabled=true",
    "--set", "metrics.prometheusRule.enabled=true",
    "--set", "metrics.dashboard.enabled=true",
    "--set", "aggregatedRoles.enabled=true",
    "--set", "keda.scaledObjects[0].agentDeployment=agent",
    "--set", "keda.scaledObjects[0].namespace=team-a",
    "--set", "keda.scaledObjects[0].minReplicaCount=0",
    "--set", "keda.scaledObjects[0].maxReplicaCount=5",
    "--set", "keda.scaledObjects[0].prometheusServerAddress=http://prometheus.monitoring:9090",
    "--set", "keda.scaledObjects[1].agentDeployment=web",
    "--set", "keda.scaledObjects[1].namespace=team-b",
    "--set", "keda.scaledObjects[1].target=Server",
    "--set", "keda.scaledObjects[1].maxReplicaCount=3",
    "--set", "keda.scaledObjects[1].prometheusServerAddress=http://prometheus.monitoring:9090",
]  # fmt: skip

METRIC = re.compile(r"\b(berth_[a-z0-9_]+)\b")


def helm_binary() -> str:
    local = Path(sys.executable).parent / "helm"
    if local.exists():
        return str(local)
    found = shutil.which("helm")
    if found is None:
        raise RuntimeError("helm not found: run `make install`")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False)


def render(*args: str) -> list[dict[str, Any]]:
    result = helm("template", "berth", str(CHART), "--namespace", "berth-system", *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def rule_groups(*args: str) -> list[dict[str, Any]]:
    """The `spec.groups` of the chart's PrometheusRule (what `promtool check rules` reads)."""
    docs = render("--set", "metrics.prometheusRule.enabled=true", *args)
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def alert_names(groups: list[dict[str, Any]]) -> set[str]:
    return {r["alert"] for g in groups for r in g["rules"] if "alert" in r}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_exprs(board: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [
        v["query"]["query"] if isinstance(v.get("query"), dict) else str(v.get("query", ""))
        for v in board["templating"]["list"]
        if v.get("type") == "query"
    ]
    return exprs


def metric_names(exprs: list[str]) -> set[str]:
    """The sample names (berth_*) the expressions read."""
    return {m for e in exprs for m in METRIC.findall(e)}


def used_metric_names() -> set[str]:
    exprs = dashboard_exprs(dashboard())
    exprs += [r["expr"] for g in rule_groups() for r in g["rules"]]
    return metric_names(exprs)


def promtool_binary() -> str:
    found = shutil.which("promtool")
    if found is None:
        raise RuntimeError("promtool not found: `make install` installs Debian's prometheus")
    return found


def write_rules(path: Path, groups: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path
