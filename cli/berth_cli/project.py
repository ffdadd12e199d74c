"""What a project folder declares, for `berth dev`, `build` and `deploy` (pure).

Two kinds of folder: a LangGraph project (`langgraph.json`: `graphs`, `dependencies`,
`env`, `python_version`, `pip_config_file`, `dockerfile_lines`, and Berth's `crons`), or a
deep-agent folder (`AGENTS.md`, `skills/`, `mcp.json`, `deepagents.toml`), which is served
through two generated files (`berth_runtime.deepagent.entry`). Every bad input raises
`ProjectError` with the file and the field in its message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from berth_runtime.config import ConfigError, parse_config
from berth_runtime.deepagent.entry import langgraph_config
from berth_runtime.deepagent.folder import DeepAgentFolder
from pydantic import ValidationError

CONFIG_FILE = "langgraph.json"
PYTHON_VERSION = "3.11"  # the runtime image's Python
# What langgraph-cli's langgraph.json may hold that Berth cannot honour: refused by name.
UNSUPPORTED = {
    "node_version": "JavaScript graphs are not supported by Berth's runtime",
    "base_image": "the base is always Berth's runtime image (berth build --base-image)",
    "image_distro": "the base is always Berth's runtime image (berth build --base-image)",
}
_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]+\])?\s*([<>=!~].*)?$")
_CRON_KEYS = (
    "name",
    "schedule",
    "assistant_id",
    "input",
    "metadata",
    "config",
    "context",
    "timezone",
    "thread_id",
    "concurrency_policy",
    "suspend",
)
_CRON_FIELD = {
    "assistant_id": "assistantId",
    "timezone": "timeZone",
    "thread_id": "threadId",
    "concurrency_policy": "concurrencyPolicy",
}
_CRON_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$")


class ProjectError(ValueError):
    """The folder cannot be served, built or deployed; the message names the field."""


@dataclass(frozen=True)
class Cron:
    """One scheduled run, rendered as an AgentCron."""

    name: str
    spec: Mapping[str, Any]  # AgentCron spec fields, camelCase, without deploymentRef


@dataclass(frozen=True)
class Project:
    """A folder ready to serve, build or deploy."""

    root: Path
    kind: Literal["langgraph", "deepagent"]
    config: Mapping[str, Any]  # the langgraph.json to serve (generated for a deep agent)
    graphs: Mapping[str, str]  # id -> "./file.py:attr", relative to root
    packages: tuple[str, ...]  # pip requirements from `dependencies`
    local_deps: tuple[str, ...]  # local paths from `dependencies`, relative to root
    python_version: str
    pip_config_file: str | None
    dockerfile_lines: tuple[str, ...]
    env: Mapping[str, str]  # inline env (not secret)
    env_file: str | None  # relative path of the .env file (secret), if any
    crons: tuple[Cron, ...]
    sandbox_pool: str | None
    deep_agent: DeepAgentFolder | None = None
    config_name: str = CONFIG_FILE  # the langgraph.json file in root (langgraph projects)

    @property
    def name(self) -> str:
        """The default deployment name: the deep agent's name or the folder's."""
        if self.deep_agent is not None:
            return self.deep_agent.name
        name = re.sub(r"[^a-z0-9-]+", "-", self.root.name.lower()).strip("-")[:40].strip("-")
        return name or "agent"


def _inside(rel: str, what: str) -> str:
    """A relative path that stays inside the folder, normalized ('./a/../b' -> 'b')."""
    if rel.startswith("/"):
        raise ProjectError(f"{CONFIG_FILE}: {what}: {rel!r} must be relative to the folder")
    parts: list[str] = []
    for part in PurePosixPath(rel).parts:
        if part == "..":
            if not parts:
                raise ProjectError(f"{CONFIG_FILE}: {what}: {rel!r} is outside the project folder")
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts) or "."


def _graph_path(graph_id: str, ref: Any) -> tuple[str, str]:
    if isinstance(ref, Mapping):
        ref = ref.get("path")
    if not isinstance(ref, str) or ":" not in ref:
        raise ProjectError(
            f"{CONFIG_FILE}: graphs.{graph_id} must be './file.py:object', got {ref!r}"
        )
    path, _, attr = ref.rpartition(":")
    if not path.endswith(".py") or not attr.isidentifier():
        raise ProjectError(
            f"{CONFIG_FILE}: graphs.{graph_id} must be './file.py:object', got {ref!r}"
        )
    return path, attr


def parse_crons(raw: Any, where: str, graphs: Sequence[str]) -> tuple[Cron, ...]:
    """`crons`: a list of {name, schedule, assistant_id, input, ...}, checked against the
    AgentCron schema (schedule syntax, time zone shape) with the field in every message."""
    from berth_operator.api.agentcron import AgentCronSpec

    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ProjectError(f"{where}: crons must be a list of objects")
    out: list[Cron] = []
    for i, item in enumerate(raw):
        at = f"{where}: crons[{i}]"
        if not isinstance(item, Mapping):
            raise ProjectError(f"{at} must be an object")
        unknown = sorted(set(item) - set(_CRON_KEYS))
        if unknown:
            raise ProjectError(f"{at}: unknown key {unknown[0]!r} (known: {', '.join(_CRON_KEYS)})")
        name = item.get("name")
        if not isinstance(name, str) or not _CRON_NAME.match(name):
            raise ProjectError(
                f"{at}.name must be 1-52 lower-case letters, digits or '-', got {name!r}"
            )
        if "schedule" not in item:
            raise ProjectError(f"{at}.schedule is required (a cron expression)")
        assistant = item.get("assistant_id")
        if assistant is None:
            if len(graphs) != 1:
                raise ProjectError(f"{at}.assistant_id is required (graphs: {', '.join(graphs)})")
            assistant = graphs[0]
        spec: dict[str, Any] = {"assistantId": assistant}
        for key, value in item.items():
            if key not in ("name", "assistant_id"):
                spec[_CRON_FIELD.get(str(key), str(key))] = value
        try:
            AgentCronSpec.model_validate({**spec, "deploymentRef": {"name": "x"}})
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            raise ProjectError(f"{at}.{field}: {msg}" if field else f"{at}: {msg}") from None
        if len({c.name for c in out} | {name}) == len(out):
            raise ProjectError(f"{at}.name {name!r} is used twice")
        out.append(Cron(name=name, spec=spec))
    return tuple(out)


def parse_langgraph_project(
    data: Any, root: Path, exists: Callable[[str], bool], env_text: str | None = None
) -> Project:
    """Check a decoded `langgraph.json`; `exists(rel)` tells whether a file is in the folder."""
    if not isinstance(data, Mapping):
        raise ProjectError(f"{CONFIG_FILE} must hold a JSON object")
    for key, why in UNSUPPORTED.items():
        if key in data:
            raise ProjectError(f"{CONFIG_FILE}: {key}: {why}")
    graphs_raw = data.get("graphs")
    if not isinstance(graphs_raw, Mapping) or not graphs_raw:
        raise ProjectError(f"{CONFIG_FILE}: graphs must be a non-empty object")
    graphs: dict[str, str] = {}
    for graph_id, ref in graphs_raw.items():
        path, attr = _graph_path(str(graph_id), ref)
        rel = _inside(path, f"graphs.{graph_id}")
        if not exists(rel):
            raise ProjectError(f"{CONFIG_FILE}: graphs.{graph_id}: no file {rel} in {root}")
        graphs[str(graph_id)] = f"./{rel}:{attr}"

    deps_raw = data.get("dependencies", ["."])
    if not isinstance(deps_raw, list) or not all(isinstance(d, str) and d for d in deps_raw):
        raise ProjectError(f"{CONFIG_FILE}: dependencies must be a list of non-empty strings")
    packages: list[str] = []
    local: list[str] = []
    for dep in deps_raw:
        if dep.startswith(".") or dep.startswith("/"):
            rel = _inside(dep, "dependencies")
            if rel != "." and not exists(rel):
                raise ProjectError(f"{CONFIG_FILE}: dependencies: no {rel} in {root}")
            local.append(rel)
        elif _REQUIREMENT.match(dep):
            packages.append(dep)
        else:
            raise ProjectError(
                f"{CONFIG_FILE}: dependencies: {dep!r} is neither a local path ('./src') "
                "nor a pip requirement ('langchain-openai>=1.0')"
            )

    version = data.get("python_version", PYTHON_VERSION)
    if not isinstance(version, str) or version != PYTHON_VERSION:
        raise ProjectError(
            f"{CONFIG_FILE}: python_version: Berth's runtime image has Python "
            f"{PYTHON_VERSION}, got {version!r}"
        )
    pip_conf = data.get("pip_config_file")
    if pip_conf is not None:
        if not isinstance(pip_conf, str) or not pip_conf:
            raise ProjectError(f"{CONFIG_FILE}: pip_config_file must be a path")
        pip_conf = _inside(pip_conf, "pip_config_file")
        if not exists(pip_conf):
            raise ProjectError(f"{CONFIG_FILE}: pip_config_file: no file {pip_conf} in {root}")
    lines = data.get("dockerfile_lines", [])
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        raise ProjectError(f"{CONFIG_FILE}: dockerfile_lines must be a list of strings")
    for line in lines:
        if line.strip().upper().startswith("FROM "):
            raise ProjectError(
                f"{CONFIG_FILE}: dockerfile_lines: {line!r}: FROM is not allowed "
                "(the image is always built on Berth's runtime image)"
            )

    env_raw = data.get("env")
    env: dict[str, str] = {}
    env_file: str | None = None
    if isinstance(env_raw, str):
        env_file = _inside(env_raw, "env")
        if not exists(env_file):
            raise ProjectError(f"{CONFIG_FILE}: env: no file {env_file} in {root}")
    elif isinstance(env_raw, Mapping):
        for k, v in env_raw.items():
            if not isinstance(v, str | int | float | bool):
                raise ProjectError(f"{CONFIG_FILE}: env.{k} must be a string, got {v!r}")
            env[str(k)] = str(v)
    elif env_raw is not None:
        raise ProjectError(f"{CONFIG_FILE}: env must be an object or the path of a .env file")

    try:  # everything else the runtime checks at start-up, checked now
        runtime_config = parse_config(data, root, env_text)
    except ConfigError as e:
        raise ProjectError(f"{CONFIG_FILE}: {str(e).removeprefix('langgraph.json: ')}") from None
    pool = runtime_config.sandbox.get("pool") if runtime_config.sandbox else None
    return Project(
        root=root,
        kind="langgraph",
        config=dict(data),
        graphs=graphs,
        packages=tuple(packages),
        local_deps=tuple(local),
        python_version=version,
        pip_config_file=pip_conf,
        dockerfile_lines=tuple(lines),
        env=env,
        env_file=env_file,
        crons=parse_crons(data.get("crons"), CONFIG_FILE, list(graphs)),
        sandbox_pool=str(pool) if pool else None,
    )


def deep_agent_project(folder: DeepAgentFolder, has_env_file: bool) -> Project:
    """A deep-agent folder as a Project: one graph, served through the generated entry."""
    config = langgraph_config(folder)
    pool = (folder.settings.sandbox or {}).get("pool")
    return Project(
        root=folder.root,
        kind="deepagent",
        config=config,
        graphs=dict(config["graphs"]),
        packages=(),
        local_deps=(".",),
        python_version=PYTHON_VERSION,
        pip_config_file=None,
        dockerfile_lines=(),
        env=dict(folder.settings.env),
        env_file=".env" if has_env_file else None,
        crons=parse_crons(list(folder.settings.crons) or None, "deepagents.toml", [folder.name]),
        sandbox_pool=str(pool) if pool else None,
        deep_agent=folder,
    )


def decode_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ProjectError(f"{where}: invalid JSON: {e}") from None
