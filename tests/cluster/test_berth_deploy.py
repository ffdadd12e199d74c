"""`berth deploy / status / delete` against a real API server with the operator running
(kwok makes the Pods Ready): the objects it makes, a second deploy that changes nothing,
an image or .env change that rolls, and a delete that removes what it made."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    OperatorProcess,
    berth_crds,
    exists,
    get,
    operator,
    volumes,
)

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds", "operator", "volumes"]  # fixtures

ROOT = Path(__file__).resolve().parents[2]
BERTH = ROOT / ".venv" / "bin" / "berth"
SECRET = "s3cret-value-never-printed"


def berth(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BERTH), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"berth {' '.join(args)}: {result.returncode}\n{result.stderr}")
    assert SECRET not in result.stdout + result.stderr
    return result


def deploy(env: dict[str, str], folder: Path, namespace: str, image: str) -> dict[str, Any]:
    out = berth(
        env, "deploy", "-c", str(folder), "--name", "shop", "-n", namespace, "--image", image,
        "--timeout", "240", "--output", "json",
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "agent"
    shutil.copytree(ROOT / "examples" / "agent", folder)
    config = json.loads((folder / "langgraph.json").read_text())
    config["env"] = ".env"
    config["crons"] = [{"name": "digest", "schedule": "0 8 * * 1-5", "assistant_id": "agent"}]
    (folder / "langgraph.json").write_text(json.dumps(config))
    (folder / ".env").write_text(f"SHOP_TOKEN={SECRET}\nAGENT_MODEL_PROVIDER=fake\n")
    return folder


def server_template(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    template: dict[str, Any] = get(kubectl, namespace, "deployment", "shop-server")["spec"][
        "template"
    ]
    return template


def test_deploy_is_idempotent_rolls_on_change_and_delete_removes_it(
    operator: OperatorProcess,
    kube_env: dict[str, str],
    kubectl: Kubectl,
    namespace: str,
    volumes: Callable[[str], str],
    project: Path,
) -> None:
    volumes("shop-postgres-data")
    first = deploy(kube_env, project, namespace, "localhost/berth-agent-shop:aaa")
    assert first["ready"] is True, first
    assert sorted(first["changed"]) == [
        "AgentCron/shop-digest",
        "AgentDeployment/shop",
        "ConfigMap/shop-project",
        "Secret/shop-env",
    ]
    ad = get(kubectl, namespace, "agentdeployment", "shop")
    assert ad["spec"]["graphs"]["configMapRef"] == {"name": "shop-project", "key": "langgraph.json"}
    assert ad["spec"]["secretRefs"] == [{"name": "shop-env"}]
    served = json.loads(
        get(kubectl, namespace, "configmap", "shop-project")["data"]["langgraph.json"]
    )
    assert served["graphs"]["agent"] == "/app/agent.py:graph" and "env" not in served
    cron = get(kubectl, namespace, "agentcron", "shop-digest")
    assert cron["spec"]["deploymentRef"] == {"name": "shop"}
    template = server_template(kubectl, namespace)
    assert template["spec"]["containers"][0]["image"] == "localhost/berth-agent-shop:aaa"
    assert {"secretRef": {"name": "shop-env"}} in template["spec"]["containers"][0]["envFrom"]
    generation = ad["metadata"]["generation"]

    again = deploy(kube_env, project, namespace, "localhost/berth-agent-shop:aaa")
    assert again["changed"] == [] and again["pruned"] == [] and again["ready"] is True
    assert (
        get(kubectl, namespace, "agentdeployment", "shop")["metadata"]["generation"] == generation
    )

    rolled = deploy(kube_env, project, namespace, "localhost/berth-agent-shop:bbb")
    assert rolled["changed"] == ["AgentDeployment/shop"] and rolled["ready"] is True
    template = server_template(kubectl, namespace)
    assert template["spec"]["containers"][0]["image"] == "localhost/berth-agent-shop:bbb"

    before = template["metadata"]["annotations"]
    (project / ".env").write_text(f"SHOP_TOKEN={SECRET}-2\nAGENT_MODEL_PROVIDER=fake\n")
    config = json.loads((project / "langgraph.json").read_text())
    config.pop("crons")
    (project / "langgraph.json").write_text(json.dumps(config))
    changed = deploy(kube_env, project, namespace, "localhost/berth-agent-shop:bbb")
    assert sorted(changed["changed"]) == ["AgentDeployment/shop", "Secret/shop-env"]
    assert changed["pruned"] == ["AgentCron/shop-digest"]
    after = server_template(kubectl, namespace)["metadata"]["annotations"]
    assert after["berth.dev/project-env-hash"] != before["berth.dev/project-env-hash"]
    assert not exists(kubectl, namespace, "agentcron", "shop-digest")

    status = json.loads(
        berth(kube_env, "status", "--name", "shop", "-n", namespace, "-o", "json").stdout
    )
    assert status[0]["ready"] is True
    assert status[0]["endpoint"] == f"http://shop.{namespace}.svc.cluster.local:8000"
    assert [p["state"] for p in status[0]["phases"]][:3] == ["ready", "ready", "ready"]

    deleted = json.loads(
        berth(kube_env, "delete", "--name", "shop", "-n", namespace, "-o", "json").stdout
    )
    assert set(deleted["deleted"]) >= {
        "AgentDeployment/shop",
        "ConfigMap/shop-project",
        "Secret/shop-env",
        "PersistentVolumeClaim/shop-postgres-data",
        "Secret/shop-credentials",
    }
    for kind, name in (("agentdeployment", "shop"), ("configmap", "shop-project")):
        assert not exists(kubectl, namespace, kind, name)
    again_deleted = berth(kube_env, "delete", "--name", "shop", "-n", namespace)
    assert "nothing to delete" in again_deleted.stdout


def test_deploy_refuses_a_bad_project_naming_the_field(
    kube_env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "langgraph.json").write_text('{"graphs": {"agent": "./missing.py:graph"}}')
    result = berth(
        kube_env, "deploy", "-c", str(tmp_path), "-n", namespace, "--image", "x:1", check=False
    )
    assert result.returncode == 2
    assert "graphs.agent: no file missing.py" in result.stderr
