"""The Helm chart: lint, strict schema validation of what it renders, RBAC shape, install.yaml."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml
from berth_operator.api.generate import INSTALL, REPO, helm_binary, install_manifest

CHART = str(REPO / "charts" / "berth")
VALIDATE = str(REPO / ".venv" / "bin" / "kubernetes-validate")
NAMESPACED = ["--set", "watch.allNamespaces=false", "--set", "watch.namespaces={team-a,team-b}"]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=check)


def template(*args: str) -> list[dict[str, Any]]:
    out = helm("template", "berth", CHART, "--namespace", "berth-system", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize("extra", [[], NAMESPACED], ids=["cluster", "namespaced"])
def test_helm_lint(extra: list[str]) -> None:
    result = helm("lint", CHART, "--strict", *extra, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("extra", [[], NAMESPACED], ids=["cluster", "namespaced"])
def test_rendered_chart_passes_strict_kubernetes_validation(extra: list[str]) -> None:
    rendered = helm("template", "berth", CHART, "--namespace", "berth-system", *extra).stdout
    result = subprocess.run(
        [VALIDATE, "--strict", "-k", "1.36.0", "--quiet", "-"],
        input=rendered,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cluster_mode_uses_a_cluster_role() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in template()}
    assert ("ClusterRole", "berth-operator") in kinds
    assert ("ClusterRoleBinding", "berth-operator") in kinds
    assert not any(k == "Role" for k, _ in kinds)
    deploy = next(d for d in template() if d["kind"] == "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args
    assert "--liveness=http://0.0.0.0:8080/healthz" in args


def test_namespaced_mode_uses_one_role_per_watched_namespace() -> None:
    docs = template(*NAMESPACED)
    rbac = [d for d in docs if d["kind"] in {"Role", "RoleBinding"}]
    roles = {(d["kind"], d["metadata"]["namespace"]) for d in rbac}
    assert roles == {(k, ns) for k in ("Role", "RoleBinding") for ns in ("team-a", "team-b")}
    assert not [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--all-namespaces" not in args


def test_namespaced_mode_without_namespaces_is_refused() -> None:
    result = helm("template", "berth", CHART, "--set", "watch.allNamespaces=false", check=False)
    assert result.returncode != 0
    assert "namespaces" in result.stderr


def test_rbac_is_least_privilege() -> None:
    role = next(d for d in template() if d["kind"] == "ClusterRole")
    grants = {
        (group, res): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for res in rule["resources"]
    }
    for (group, res), verbs in grants.items():
        assert "*" not in verbs and res != "*" and group != "*", (group, res)
    assert grants[("", "secrets")] == {"get", "create", "patch", "update", "delete"}
    assert grants[("berth.dev", "agentdeployments")] == {"get", "list", "watch", "patch"}
    assert "delete" not in grants[("berth.dev", "agentdeployments")]
    assert ("", "namespaces") not in grants
    # Sandboxes: Pods are made and adopted by the operator; Secrets still never listed.
    assert grants[("", "pods")] == {"get", "list", "watch", "create", "patch", "delete"}
    assert grants[("berth.dev", "sandboxpools")] == {"get", "list", "watch", "patch"}
    assert {"patch"} <= grants[("berth.dev", "sandboxclaims/status")]
    assert grants[("networking.k8s.io", "networkpolicies")] >= {"create", "patch", "delete"}


def test_crds_are_templated_kept_and_optional() -> None:
    crds = [d for d in template() if d["kind"] == "CustomResourceDefinition"]
    names = {c["metadata"]["name"] for c in crds}
    assert "agentdeployments.berth.dev" in names and "kopfpeerings.kopf.dev" in names
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)
    without = template("--set", "crds.enabled=false")
    assert not [d for d in without if d["kind"] == "CustomResourceDefinition"]


def test_operator_pod_is_hardened() -> None:
    deploy = next(d for d in template() if d["kind"] == "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_install_manifest_is_up_to_date() -> None:
    assert (REPO / INSTALL).read_text() == install_manifest(), "run `make crds`"
    docs = [d for d in yaml.safe_load_all((REPO / INSTALL).read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "Namespace"
    assert {"CustomResourceDefinition", "ClusterRole", "ServiceAccount", "Deployment"} <= set(kinds)
