"""What `berth deploy` puts in the cluster, as plain objects (pure).

For a project deployed as `name`: a ConfigMap `<name>-project` with the served
`langgraph.json` (paths rewritten to `/app`, where the image holds the code), a Secret
`<name>-env` with the `.env` values, the AgentDeployment `<name>` on the built image, and
an AgentCron `<name>-<cron>` per entry of `crons`. The Pod template carries hashes of the
config and the Secret, so a change of either rolls the Pods; an unchanged project renders
the same objects, so a second deploy finds nothing to do.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from berth_operator.api.agentdeployment import parse_spec
from berth_operator.render.meta import INSTANCE_LABEL
from pydantic import ValidationError

from berth_cli.project import Project, ProjectError

GROUP_VERSION = "berth.dev/v1alpha1"
PROJECT_LABEL = "berth.dev/project"
MANAGED_BY = {"app.kubernetes.io/managed-by": "berth-cli"}
CONFIG_KEY = "langgraph.json"
CONFIG_HASH = "berth.dev/project-config-hash"
ENV_HASH = "berth.dev/project-env-hash"
APP = "/app"
__all__ = ["INSTANCE_LABEL"]


@dataclass(frozen=True)
class DeployOptions:
    name: str
    namespace: str
    image: str
    image_pull_policy: str = "IfNotPresent"
    server_replicas: int = 1
    workers: int = 0  # 0: the server Pods run the graphs too
    sandbox_pool: str | None = None


def _abs(ref: str) -> str:
    """`./agent.py:graph` -> `/app/agent.py:graph`; `.` -> `/app`."""
    path, colon, attr = ref.partition(":") if ref.count(":") == 1 else (ref, "", "")
    rel = path[2:] if path.startswith("./") else path
    rel = "" if rel in (".", "") else rel
    out = f"{APP}/{rel}" if rel else APP
    return f"{out}{colon}{attr}"


def served_config(project: Project) -> dict[str, Any]:
    """The `langgraph.json` of the Pods: absolute paths in the image, no `.env` path (the
    Secret carries it) and no `crons` (they become AgentCrons)."""
    config = {k: v for k, v in project.config.items() if k != "crons"}
    config["graphs"] = {gid: _abs(ref) for gid, ref in project.graphs.items()}
    config["dependencies"] = [_abs(d) for d in project.local_deps] + list(project.packages)
    if isinstance(config.get("env"), str):
        del config["env"]
    auth = config.get("auth")
    if isinstance(auth, Mapping) and isinstance(auth.get("path"), str):
        config["auth"] = {**auth, "path": _abs(str(auth["path"]))}
    return config


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _meta(name: str, o: DeployOptions) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": o.namespace,
        "labels": {PROJECT_LABEL: o.name, **MANAGED_BY},
    }


def config_map(project: Project, o: DeployOptions) -> dict[str, Any]:
    text = json.dumps(served_config(project), indent=2, sort_keys=True) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(f"{o.name}-project", o),
        "data": {CONFIG_KEY: text},
    }


def env_secret(values: Mapping[str, str], o: DeployOptions) -> dict[str, Any] | None:
    if not values:
        return None
    data = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(f"{o.name}-env", o),
        "type": "Opaque",
        "data": data,
    }


def agent_deployment(
    project: Project, o: DeployOptions, cm: Mapping[str, Any], secret: Mapping[str, Any] | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": o.image,
        "imagePullPolicy": o.image_pull_policy,
        "graphs": {"configMapRef": {"name": cm["metadata"]["name"], "key": CONFIG_KEY}},
        "server": {"replicas": o.server_replicas},
        "workers": {"enabled": o.workers > 0, "replicas": max(o.workers, 1)},
        "pod": {
            "annotations": {
                CONFIG_HASH: digest(cm["data"][CONFIG_KEY]),
                ENV_HASH: digest(json.dumps((secret or {}).get("data", {}), sort_keys=True)),
            }
        },
    }
    if secret is not None:
        spec["secretRefs"] = [{"name": secret["metadata"]["name"]}]
    pool = o.sandbox_pool or project.sandbox_pool
    if pool:
        spec["sandbox"] = {"pool": pool}
    try:
        parse_spec(spec)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ProjectError(f"AgentDeployment {o.name}: spec.{field}: {err['msg']}") from None
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "AgentDeployment",
        "metadata": _meta(o.name, o),
        "spec": spec,
    }


def agent_crons(project: Project, o: DeployOptions) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": GROUP_VERSION,
            "kind": "AgentCron",
            "metadata": _meta(f"{o.name}-{c.name}", o),
            "spec": {"deploymentRef": {"name": o.name}, **c.spec},
        }
        for c in project.crons
    ]


def render(
    project: Project, env_values: Mapping[str, str], o: DeployOptions
) -> list[dict[str, Any]]:
    """Every object of the deployment, in apply order."""
    if len(o.name) > 40:
        raise ProjectError(f"--name {o.name!r}: at most 40 characters")
    cm = config_map(project, o)
    secret = env_secret(env_values, o)
    out = [cm]
    if secret is not None:
        out.append(secret)
    out.append(agent_deployment(project, o, cm, secret))
    out.extend(agent_crons(project, o))
    return out


def key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return str(obj["kind"]), str(obj["metadata"]["name"])


def contains(desired: Any, live: Any) -> bool:
    """Whether `live` already holds everything `desired` sets (defaults may add more)."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            k in live and contains(v, live[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(contains(d, x) for d, x in zip(desired, live, strict=True))
        )
    return bool(desired == live)


@dataclass(frozen=True)
class Changes:
    apply: tuple[dict[str, Any], ...]  # new or changed
    unchanged: tuple[tuple[str, str], ...]
    prune: tuple[tuple[str, str], ...]  # (kind, name) made by an earlier deploy, gone now


def diff(
    desired: Sequence[Mapping[str, Any]],
    live: Mapping[tuple[str, str], Mapping[str, Any]],
) -> Changes:
    """`live`: the project's objects in the cluster (labelled with PROJECT_LABEL)."""
    apply: list[dict[str, Any]] = []
    unchanged: list[tuple[str, str]] = []
    for obj in desired:
        current = live.get(key(obj))
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        if current is not None and contains(body, current):
            unchanged.append(key(obj))
        else:
            apply.append(dict(obj))
    wanted = {key(o) for o in desired}
    prune = tuple(sorted(k for k in live if k not in wanted))
    return Changes(tuple(apply), tuple(unchanged), prune)
