"""docs/gitops/: the Argo CD Applications and the Flux Kustomizations deploy what exists,
and examples/ (what they deploy) renders with kustomize into objects the CRDs accept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from berth_operator.api.agentcron import parse_spec as parse_cron
from berth_operator.api.agentdeployment import parse_spec as parse_deployment

REPO = Path(__file__).resolve().parents[2]
GITOPS = REPO / "docs" / "gitops"
KUBECTL = str(Path(sys.executable).parent / "kubectl")


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((GITOPS / name).read_text()) if d]


def test_argocd_applications() -> None:
    apps = docs("argocd-application.yaml")
    assert [a["kind"] for a in apps] == ["Application", "Application"]
    for app in apps:
        assert app["apiVersion"] == "argoproj.io/v1alpha1"
        assert app["metadata"]["namespace"] == "argocd"
        src = app["spec"]["source"]
        assert src["repoURL"].endswith(".git") and (REPO / src["path"]).is_dir()
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
        assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
    operator, examples = apps
    assert (REPO / operator["spec"]["source"]["path"] / "install.yaml").is_file()
    assert examples["spec"]["source"]["path"] == "examples"
    waves = [int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for a in apps]
    assert waves == sorted(waves) and waves[0] < waves[1]  # agents after the operator


def test_flux_kustomizations() -> None:
    source, operator, examples = docs("flux-kustomization.yaml")
    assert source["kind"] == "GitRepository" and source["apiVersion"].startswith("source.")
    for k in (operator, examples):
        assert k["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1" and k["kind"] == "Kustomization"
        assert k["spec"]["sourceRef"] == {
            "kind": "GitRepository",
            "name": source["metadata"]["name"],
        }
        assert (REPO / k["spec"]["path"]).is_dir()
        assert k["spec"]["wait"] is True  # kstatus health checks of every object
    assert examples["spec"]["path"] == "./examples"
    assert examples["spec"]["dependsOn"] == [{"name": operator["metadata"]["name"]}]


def test_examples_kustomization_renders_valid_berth_objects() -> None:
    out = subprocess.run(
        [KUBECTL, "kustomize", str(REPO / "examples")], capture_output=True, text=True, check=True
    ).stdout
    objs = {d["kind"]: d for d in yaml.safe_load_all(out) if d}
    assert set(objs) == {"AgentDeployment", "AgentCron"}
    deployment = objs["AgentDeployment"]
    parse_deployment(deployment["spec"])
    cron = parse_cron(objs["AgentCron"]["spec"])
    assert cron.deployment_ref.name == deployment["metadata"]["name"]
