"""What `berth deploy` and `berth build` decide, without a cluster or a builder."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from berth_cli import status as st
from berth_cli.build import context_files, dockerfile, excluded, image_tag, plan
from berth_cli.load import load_project
from berth_cli.manifests import (
    CONFIG_HASH,
    ENV_HASH,
    PROJECT_LABEL,
    DeployOptions,
    contains,
    diff,
    render,
    served_config,
)
from berth_cli.project import ProjectError, parse_langgraph_project

ROOT = Path(__file__).resolve().parents[3]
AGENT = ROOT / "examples" / "agent"
FILES = {"agent.py", "src", ".env", "pip.conf"}


def project(**extra: Any) -> Any:
    data = {"graphs": {"agent": "./agent.py:graph"}, **extra}
    return parse_langgraph_project(data, Path("/p"), lambda rel: rel in FILES)


def options(**kw: Any) -> DeployOptions:
    return DeployOptions(**{"name": "demo", "namespace": "agents", "image": "r/i:1", **kw})


def test_the_served_config_points_into_the_image() -> None:
    p = project(
        dependencies=[".", "./src", "langchain-openai"],
        env="./.env",
        auth={"path": "./agent.py:auth"},
        crons=[{"name": "d", "schedule": "@daily"}],
    )
    config = served_config(p)
    assert config["graphs"] == {"agent": "/app/agent.py:graph"}
    assert config["dependencies"] == ["/app", "/app/src", "langchain-openai"]
    assert config["auth"] == {"path": "/app/agent.py:auth"}
    assert "env" not in config and "crons" not in config


def test_render_makes_configmap_secret_deployment_and_crons() -> None:
    p = project(crons=[{"name": "daily", "schedule": "@daily"}], sandbox={"pool": "py"})
    objs = render(p, {"API_KEY": "s3cret"}, options(workers=2, server_replicas=3))
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("ConfigMap", "demo-project"),
        ("Secret", "demo-env"),
        ("AgentDeployment", "demo"),
        ("AgentCron", "demo-daily"),
    ]
    cm, secret, ad, cron = objs
    assert all(o["metadata"]["labels"][PROJECT_LABEL] == "demo" for o in objs)
    assert all(o["metadata"]["namespace"] == "agents" for o in objs)
    assert json.loads(cm["data"]["langgraph.json"])["graphs"] == {"agent": "/app/agent.py:graph"}
    assert base64.b64decode(secret["data"]["API_KEY"]) == b"s3cret"
    spec = ad["spec"]
    assert spec["image"] == "r/i:1"
    assert spec["graphs"] == {"configMapRef": {"name": "demo-project", "key": "langgraph.json"}}
    assert spec["secretRefs"] == [{"name": "demo-env"}]
    assert spec["server"] == {"replicas": 3}
    assert spec["workers"] == {"enabled": True, "replicas": 2}
    assert spec["sandbox"] == {"pool": "py"}
    assert cron["spec"] == {"deploymentRef": {"name": "demo"}, "assistantId": "agent",
                            "schedule": "@daily"}  # fmt: skip


def test_no_env_file_no_secret_and_hashes_follow_content() -> None:
    p = project()
    objs = render(p, {}, options())
    assert [o["kind"] for o in objs] == ["ConfigMap", "AgentDeployment"]
    ad = objs[1]
    assert "secretRefs" not in ad["spec"]
    assert ad["spec"]["workers"] == {"enabled": False, "replicas": 1}
    first = ad["spec"]["pod"]["annotations"]
    again = render(p, {}, options())[1]["spec"]["pod"]["annotations"]
    assert first == again
    other = render(project(env={"A": "1"}), {}, options())[1]["spec"]["pod"]["annotations"]
    assert other[CONFIG_HASH] != first[CONFIG_HASH] and other[ENV_HASH] == first[ENV_HASH]
    with_env = render(p, {"K": "v"}, options())[2]["spec"]["pod"]["annotations"]
    assert with_env[ENV_HASH] != first[ENV_HASH]


def test_secret_values_never_reach_the_configmap_or_the_deployment() -> None:
    objs = render(project(env="./.env"), {"TOKEN": "very-secret-value"}, options())
    visible = json.dumps([o for o in objs if o["kind"] != "Secret"])
    assert "very-secret-value" not in visible


def test_bad_deploy_options_name_the_field() -> None:
    with pytest.raises(ProjectError, match="at most 40 characters"):
        render(project(), {}, options(name="x" * 41))
    with pytest.raises(ProjectError, match=r"AgentDeployment demo: spec\.image"):
        render(project(), {}, options(image=""))


def live_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server answers: the object plus defaults and bookkeeping."""
    out = json.loads(json.dumps(obj))
    out["metadata"].update(uid="u", resourceVersion="7", generation=1)
    if obj["kind"] == "AgentDeployment":
        out["spec"]["postgres"] = {"bundled": {"storage": {"size": "1Gi"}}}
        out["spec"]["server"]["port"] = 8000
        out["status"] = {"conditions": []}
    return out


def test_a_second_deploy_with_no_change_applies_nothing() -> None:
    objs = render(project(crons=[{"name": "d", "schedule": "@daily"}]), {"K": "v"}, options())
    live = {(o["kind"], o["metadata"]["name"]): live_copy(o) for o in objs}
    changes = diff(objs, live)
    assert changes.apply == () and changes.prune == ()
    assert len(changes.unchanged) == 4


def test_a_new_image_changes_only_the_deployment_and_a_dropped_cron_is_pruned() -> None:
    before = render(project(crons=[{"name": "d", "schedule": "@daily"}]), {}, options())
    live = {(o["kind"], o["metadata"]["name"]): live_copy(o) for o in before}
    after = render(project(), {}, options(image="r/i:2"))
    changes = diff(after, live)
    assert [o["kind"] for o in changes.apply] == ["AgentDeployment"]
    assert changes.prune == (("AgentCron", "demo-d"),)


def test_contains() -> None:
    assert contains({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2, "d": 3}], "e": 1}})
    assert not contains({"a": [1]}, {"a": [1, 2]})
    assert not contains({"a": 1}, {})
    assert not contains({"a": {"b": 1}}, {"a": 1})


def test_the_dockerfile_installs_dependencies_on_the_runtime_image() -> None:
    p = project(
        dependencies=[".", "langchain-openai>=1.0"],
        pip_config_file="./pip.conf",
        dockerfile_lines=["RUN apt-get update"],
    )
    text = dockerfile(p, "localhost/berth-runtime:abc", pip_args=True)
    lines = text.splitlines()
    assert lines[1] == "FROM localhost/berth-runtime:abc"
    assert "ARG PIP_INDEX_URL" in lines
    assert "COPY app/pip.conf /etc/berth-pip.conf" in lines
    assert "pip install --no-cache-dir 'langchain-openai>=1.0'" in text
    assert lines.index("RUN apt-get update") > lines.index("COPY app/ /app/")
    assert lines[-1] == "USER 10001:10001"


def test_secrets_and_local_state_never_enter_the_context() -> None:
    for rel in (".env", "sub/.env", ".env.local", ".berth/dev/x", ".git/HEAD", "a/b.pyc",
                "__pycache__/x.py", ".venv/bin/python"):  # fmt: skip
        assert excluded(rel), rel
    assert not excluded("agent.py") and not excluded("skills/a/SKILL.md")
    p = project()
    assert context_files(p, ["agent.py", ".env", ".berth/x"]) == {"agent.py": "agent.py"}


def test_the_tag_follows_the_content() -> None:
    a = image_tag("FROM x\n", {"app/a.py": b"1"})
    assert a == image_tag("FROM x\n", {"app/a.py": b"1"})
    assert a != image_tag("FROM x\n", {"app/a.py": b"2"})
    assert a != image_tag("FROM y\n", {"app/a.py": b"1"})
    assert a != image_tag("FROM x\n", {"app/b.py": b"1"})


def test_plan_of_the_deep_agent_example_adds_its_entry_and_config() -> None:
    p = load_project(ROOT / "examples" / "deep-agent")
    files = [
        "AGENTS.md",
        "deepagents.toml",
        "mcp.json",
        "mcp_server.py",
        "skills/brew-guide/SKILL.md",
    ]
    read = {f: (p.root / f).read_bytes() for f in files}
    built = plan(p, "base:1", files, read)
    assert set(built.generated) == {"langgraph.json", "berth_deep_agent.py"}
    assert json.loads(built.generated["langgraph.json"])["graphs"] == {
        "concierge": "./berth_deep_agent.py:graph"
    }
    assert "build_graph(Path(__file__).resolve().parent)" in built.generated["berth_deep_agent.py"]
    assert built.ref == f"localhost/berth-agent-concierge:{built.tag}"
    assert served_config(p)["graphs"] == {"concierge": "/app/berth_deep_agent.py:graph"}


def ad_with(conditions: list[dict[str, str]], generation: int = 2, observed: int = 2) -> Any:
    return {
        "metadata": {"name": "demo", "generation": generation},
        "spec": {"image": "i"},
        "status": {"observedGeneration": observed, "conditions": conditions},
    }


def cond(t: str, s: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": t, "status": s, "reason": reason, "message": message}


def test_status_phases_ready_and_failure() -> None:
    ready = ad_with([cond("Ready", "True"), cond("DatabaseReady", "True"),
                     cond("RedisReady", "True"), cond("ServerReady", "True")])  # fmt: skip
    assert st.ready(ready) and st.failure(ready) is None
    assert [p.state for p in st.phases(ready)] == ["ready", "ready", "ready", "off"]
    assert not st.ready(ad_with([cond("Ready", "True")], generation=3, observed=2))
    stalled = ad_with([
        cond("Ready", "False", "ImagePullBackOff", "server: image x"),
        cond("Stalled", "True", "ImagePullBackOff", "server: image x"),
        cond("DatabaseReady", "True"),
        cond("ServerReady", "False", "ImagePullBackOff", "server: image x"),
    ])  # fmt: skip
    assert st.failure(stalled) == ("ImagePullBackOff", "server: image x")
    assert st.failing_component(stalled) == "server"
    states = {p.name: p.state for p in st.phases(stalled)}
    assert states["server"] == "failed" and states["Postgres"] == "ready"
    summary = st.summary(stalled)
    assert summary["ready"] is False and summary["reason"] == "ImagePullBackOff"


def test_the_example_agent_project() -> None:
    p = load_project(AGENT)
    assert p.kind == "langgraph" and "agent" in p.graphs
    assert p.name == "agent"


def _pod(name: str, ready: bool, waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {"name": name},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "c", "state": state}],
        },
    }


def test_the_failing_pod_is_the_one_the_kubelet_gives_the_reason_for() -> None:
    from berth_cli.deploy import failing_pod

    pods = [
        _pod("x-postgres-0", ready=False),  # still pending: not the cause
        _pod("x-redis-0", ready=True),
        _pod("x-server-1", ready=False, waiting="ImagePullBackOff"),
    ]
    assert failing_pod(pods, "ImagePullBackOff") == "x-server-1"
    assert failing_pod(pods, "Timeout") == "x-postgres-0"
    assert failing_pod([_pod("x-redis-0", ready=True)], "Timeout") == "x-redis-0"
    assert failing_pod([], "Timeout") is None
