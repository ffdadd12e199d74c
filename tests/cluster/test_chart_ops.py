"""The chart's operations kit on a real control plane.

- Aggregated ClusterRoles: with the chart installed (aggregatedRoles.enabled), a user bound
  to the built-in `view`, `edit` or `admin` ClusterRole in a namespace may do with Berth's
  kinds what that role allows (kube-controller-manager's clusterrole-aggregation controller
  copies the rules); a user without a binding may do nothing.
- The operator's /metrics (`--metrics-port`) serves every operator metric the dashboard
  and the alerts read, with the values of what it reconciled.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    agent,
    apply,
    berth_crds,
    delete_all_agentdeployments,
    external_secrets,
    start_operator,
    wait_ready,
)
from tests.cluster.sandbox_harness import cleanup_sandboxes, poll, wait_pool_ready
from tests.cluster.sandbox_harness import pool as sandbox_pool
from tests.support.opskit import used_metric_names
from tests.support.servers import free_port

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds"]

ROOT = Path(__file__).resolve().parents[2]
HELM = str(Path(sys.executable).parent / "helm")
KINDS = ["agentdeployments", "agentcrons", "sandboxpools", "sandboxclaims"]
USERS = {"viewer": "view", "editor": "edit", "owner": "admin"}


@pytest.fixture
def release_with_roles(berth_crds: None, namespace: str, kube_env: dict[str, str]) -> Iterator[str]:
    args = [
        HELM, "install", "berth-ops", str(ROOT / "charts" / "berth"),
        "--namespace", namespace,
        "--set", "watch.allNamespaces=false",
        "--set", f"watch.namespaces={{{namespace}}}",
        "--set", "crds.enabled=false",
        "--set", "aggregatedRoles.enabled=true",
    ]  # fmt: skip
    result = subprocess.run(args, env=kube_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield namespace
    finally:
        subprocess.run(
            [HELM, "uninstall", "berth-ops", "--namespace", namespace],
            env=kube_env,
            capture_output=True,
        )


def can(kubectl: Kubectl, user: str, verb: str, resource: str, ns: str, sub: str = "") -> bool:
    args = ["auth", "can-i", verb, f"{resource}.berth.dev", "-n", ns, f"--as={user}"]
    if sub:
        args.append(f"--subresource={sub}")
    out = kubectl(*args, check=False).stdout.strip()
    assert out in ("yes", "no"), out
    return out == "yes"


def test_aggregated_roles_extend_view_edit_and_admin(
    release_with_roles: str, kubectl: Kubectl
) -> None:
    ns = release_with_roles
    for user, role in USERS.items():
        kubectl("create", "rolebinding", f"{user}-{role}", f"--clusterrole={role}",
                f"--user={user}", "-n", ns)  # fmt: skip
    # The clusterrole-aggregation controller (kube-controller-manager) fills the built-in
    # roles from the labelled ones; that takes a moment.
    poll(
        lambda: all(can(kubectl, u, "list", "agentdeployments", ns) for u in USERS),
        timeout=60,
        what="berth roles aggregated into view/edit/admin",
    )
    view = json.loads(kubectl("get", "clusterrole", "view", "-o", "json").stdout)
    assert any("berth.dev" in r.get("apiGroups", []) for r in view["rules"]), view["rules"]

    expected = {
        # verb, subresource: viewer, editor, owner, nobody
        ("get", ""): (True, True, True, False),
        ("list", ""): (True, True, True, False),
        ("watch", ""): (True, True, True, False),
        ("create", ""): (False, True, True, False),
        ("delete", ""): (False, True, True, False),
        ("patch", ""): (False, True, True, False),
        ("get", "status"): (True, True, True, False),
        ("patch", "status"): (False, False, True, False),
    }
    wrong = []
    for kind in KINDS:
        for (verb, sub), allowed in expected.items():
            for user, want in zip([*USERS, "nobody"], allowed, strict=True):
                if can(kubectl, user, verb, kind, ns, sub) != want:
                    wrong.append((user, verb, kind, sub, want))
            # A binding in this namespace grants nothing in another one.
            if can(kubectl, "editor", verb, kind, "default", sub):
                wrong.append(("editor", verb, kind, sub, "in default"))
    assert not wrong, wrong
    for user in USERS:  # and never the operator's own business
        assert not can(kubectl, user, "update", "agentdeployments", ns, "finalizers")


def test_operator_metrics_serve_what_the_dashboard_and_alerts_read(
    berth_crds: None, kubectl: Kubectl, namespace: str, kube_env: dict[str, str]
) -> None:
    port = free_port()
    op = start_operator(kube_env, namespace, "--metrics-port", str(port))
    url = f"http://127.0.0.1:{port}/metrics"

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = httpx.get(url, timeout=10).text
        return {
            (s.name, frozenset(s.labels.items())): float(s.value)
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }

    pool_labels = frozenset({("namespace", namespace), ("sandboxpool", "py")})
    try:
        external_secrets(kubectl, namespace)
        apply(kubectl, namespace, agent("ext"), sandbox_pool("py", replicas=2, max_size=3))
        wait_ready(kubectl, namespace, "ext")
        wait_pool_ready(kubectl, namespace, "py", replicas=2)
        got = poll(
            lambda: (s := scrape()).get(("berth_sandboxpool_warm_pods", pool_labels)) == 2 and s,
            timeout=30,
            what="the pool's warm Pods in the operator's metrics",
        )
        assert got[("berth_sandboxpool_max_pods", pool_labels)] == 3
        assert got[("berth_sandboxpool_claimed_pods", pool_labels)] == 0
        ok = frozenset({("kind", "AgentDeployment"), ("result", "ok")})
        assert got[("berth_operator_reconciles_total", ok)] >= 1
        pool_ok = frozenset({("kind", "SandboxPool"), ("result", "ok")})
        assert got[("berth_operator_reconciles_total", pool_ok)] >= 1
        served = {name for name, _ in got}
        wanted = {
            n
            for n in used_metric_names()
            if n.startswith(("berth_operator_", "berth_sandboxpool_"))
        }
        assert wanted and wanted <= served, sorted(wanted - served)
        # A deleted pool's series go away (no stale "exhausted" pool).
        cleanup_sandboxes(kubectl, namespace)
        poll(
            lambda: ("berth_sandboxpool_warm_pods", pool_labels) not in scrape(),
            timeout=30,
            what="the deleted pool's series to go",
        )
    finally:
        cleanup_sandboxes(kubectl, namespace)
        delete_all_agentdeployments(kubectl, namespace)
        op.stop()
