"""The Helm chart's RBAC is enough for the operator, and no wider than needed.

`helm install` the chart (namespaced mode) into the control plane, then run the
operator with a token of the chart's ServiceAccount (not the admin kubeconfig).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    agent,
    apply,
    berth_crds,
    delete_all_agentdeployments,
    external_secrets,
    start_operator,
    volumes,
    wait_ready,
)
from tests.cluster.sandbox_harness import claim as sandbox_claim
from tests.cluster.sandbox_harness import cleanup_sandboxes, wait_claim
from tests.cluster.sandbox_harness import pool as sandbox_pool

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds", "volumes"]

ROOT = Path(__file__).resolve().parents[2]
HELM = str(Path(sys.executable).parent / "helm")
SA = "berth-operator"


@pytest.fixture
def chart_release(
    berth_crds: None, kubectl: Kubectl, namespace: str, kube_env: dict[str, str]
) -> Iterator[str]:
    """The chart installed into the test namespace, watching only that namespace."""
    args = [
        HELM,
        "install",
        "berth",
        str(ROOT / "charts" / "berth"),
        "--namespace",
        namespace,
        "--set",
        "watch.allNamespaces=false",
        "--set",
        f"watch.namespaces={{{namespace}}}",
        "--set",
        "crds.enabled=false",  # installed once per session by kubectl already
    ]
    result = subprocess.run(args, env=kube_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield "berth"
    finally:
        subprocess.run(
            [HELM, "uninstall", "berth", "--namespace", namespace],
            env=kube_env,
            capture_output=True,
        )


def service_account_kubeconfig(
    kubectl: Kubectl, admin_kubeconfig: Path, namespace: str, tmp_path: Path
) -> Path:
    token = kubectl("create", "token", SA, "-n", namespace, "--duration=1h").stdout.strip()
    config = yaml.safe_load(admin_kubeconfig.read_text())
    config["users"] = [{"name": "berth-operator", "user": {"token": token}}]
    for ctx in config["contexts"]:
        ctx["context"]["user"] = "berth-operator"
    path = tmp_path / "sa-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_operator_works_with_the_chart_service_account_only(
    chart_release: str,
    kubectl: Kubectl,
    namespace: str,
    kube_env: dict[str, str],
    tmp_path: Path,
    volumes: Callable[[str], str],
) -> None:
    sa_kubeconfig = service_account_kubeconfig(
        kubectl, Path(kube_env["KUBECONFIG"]), namespace, tmp_path
    )
    env = {**kube_env, "KUBECONFIG": str(sa_kubeconfig)}
    whoami = subprocess.run(
        [
            str(Path(sys.executable).parent / "kubectl"),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert whoami.stdout == f"system:serviceaccount:{namespace}:{SA}", whoami.stderr

    op = start_operator(env, namespace)
    try:
        external_secrets(kubectl, namespace)
        volumes("full-postgres-data")
        everything = agent(
            "full",
            external=False,
            workers={"enabled": True},
            autoscaling={"target": "Workers", "maxReplicas": 3, "queueDepth": {}},
            sandbox={"pool": "py"},  # the runtime's claim Role: granted within the chart's RBAC
        )
        apply(kubectl, namespace, agent("ext"), everything)
        # A sandbox pool (CA Secret, ConfigMaps, NetworkPolicy, warm Pods) and a claim.
        apply(kubectl, namespace, sandbox_pool("py", replicas=1, max_size=3))
        apply(kubectl, namespace, sandbox_claim("sbx", "py"))
        wait_ready(kubectl, namespace, "ext")
        wait_ready(kubectl, namespace, "full", timeout=90)
        wait_claim(kubectl, namespace, "sbx", timeout=90)
        assert "Forbidden" not in op.log() and " 403" not in op.log(), op.log()
        kubectl("get", "role,rolebinding", "full-sandboxes", "-n", namespace)
        # The runtime claims sandboxes but reads no Secret (not even its own key: that comes
        # in as env), so the auth proxy's rule Secrets are out of its reach.
        runtime_sa = f"--as=system:serviceaccount:{namespace}:full"
        for verb, resource, allowed in [
            ("create", "sandboxclaims.berth.dev", "yes"),
            ("get", "secrets", "no"),
            ("get", "secrets/full-sandbox-key", "no"),
            ("list", "secrets", "no"),
        ]:
            can = kubectl("auth", "can-i", verb, resource, "-n", namespace, runtime_sa, check=False)
            assert can.stdout.strip() == allowed, (verb, resource, can.stdout)
        key = kubectl(
            "get", "secret", "full-sandbox-key", "-n", namespace, "-o", "jsonpath={.data.key}"
        ).stdout
        assert len(base64.b64decode(key)) == 64
        kubectl("delete", "deployment", "ext-server", "-n", namespace)
        wait_ready(kubectl, namespace, "ext")
    finally:
        cleanup_sandboxes(kubectl, namespace)
        delete_all_agentdeployments(kubectl, namespace)
        op.stop()


@pytest.mark.parametrize(
    ("verb", "resource", "where"),
    [
        ("list", "secrets", "same"),
        ("watch", "secrets", "same"),
        ("update", "pods", "same"),
        ("deletecollection", "pods", "same"),
        ("delete", "sandboxpools.berth.dev", "same"),
        ("delete", "agentdeployments.berth.dev", "same"),
        ("update", "agentdeployments.berth.dev", "same"),
        ("bind", "roles.rbac.authorization.k8s.io", "same"),
        ("escalate", "roles.rbac.authorization.k8s.io", "same"),
        ("create", "clusterroles.rbac.authorization.k8s.io", "cluster"),
        ("delete", "agentcrons.berth.dev", "same"),
        ("get", "agentdeployments.berth.dev", "default"),
        ("get", "secrets", "default"),
        ("create", "deployments.apps", "default"),
        ("list", "nodes", "cluster"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", "cluster"),
        ("list", "clusterkopfpeerings.kopf.dev", "cluster"),
    ],
)
def test_chart_rbac_grants_nothing_more(
    chart_release: str, kubectl: Kubectl, namespace: str, verb: str, resource: str, where: str
) -> None:
    scope = {"same": ["-n", namespace], "default": ["-n", "default"], "cluster": []}[where]
    result = kubectl(
        "auth",
        "can-i",
        verb,
        resource,
        *scope,
        f"--as=system:serviceaccount:{namespace}:{SA}",
        check=False,
    )
    assert result.stdout.strip() == "no", (verb, resource, where, result.stdout)


def test_chart_rbac_grants_what_the_operator_uses(
    chart_release: str, kubectl: Kubectl, namespace: str
) -> None:
    for verb, resource in [
        ("patch", "agentdeployments.berth.dev"),
        ("patch", "agentdeployments.berth.dev/status"),
        ("watch", "agentcrons.berth.dev"),
        ("create", "roles.rbac.authorization.k8s.io"),
        ("create", "rolebindings.rbac.authorization.k8s.io"),
        ("watch", "deployments.apps"),
        ("create", "persistentvolumeclaims"),
        ("patch", "horizontalpodautoscalers.autoscaling"),
        ("create", "kopfpeerings.kopf.dev"),
        ("create", "pods"),
        ("patch", "pods"),
        ("watch", "sandboxpools.berth.dev"),
        ("patch", "sandboxclaims.berth.dev/status"),
        ("create", "networkpolicies.networking.k8s.io"),
    ]:
        result = kubectl(
            "auth",
            "can-i",
            verb,
            resource,
            "-n",
            namespace,
            f"--as=system:serviceaccount:{namespace}:{SA}",
            check=False,
        )
        assert result.stdout.strip() == "yes", (verb, resource)


def test_install_manifest_applies_server_side_and_grants_all_namespaces(
    berth_crds: None, kubectl: Kubectl
) -> None:
    """deploy/install.yaml, the GitOps / `kubectl apply --server-side` path."""
    manifest = ROOT / "deploy" / "install.yaml"
    try:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifest))
        kubectl(
            "rollout", "status", "deployment/berth-operator", "-n", "berth-system", "--timeout=60s"
        )
        who = "--as=system:serviceaccount:berth-system:berth-operator"
        for verb, resource in [
            ("watch", "agentdeployments.berth.dev"),
            ("patch", "deployments.apps"),
            ("patch", "clusterkopfpeerings.kopf.dev"),
        ]:
            out = kubectl("auth", "can-i", verb, resource, "--all-namespaces", who, check=False)
            assert out.stdout.strip() == "yes", (verb, resource)
        out = kubectl("auth", "can-i", "list", "secrets", "--all-namespaces", who, check=False)
        assert out.stdout.strip() == "no"
    finally:
        kubectl("delete", "namespace", "berth-system", "--wait=false", check=False)
        kubectl(
            "delete",
            "clusterrole,clusterrolebinding",
            "berth-operator",
            "--ignore-not-found",
            check=False,
        )
