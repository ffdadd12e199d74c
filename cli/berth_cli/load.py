"""Find and read the project folder (the I/O around `berth_cli.project`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from berth_runtime.config import parse_env_file
from berth_runtime.deepagent.folder import FolderError, is_deep_agent_folder, load_folder

from berth_cli.project import (
    CONFIG_FILE,
    Project,
    ProjectError,
    decode_json,
    deep_agent_project,
    parse_langgraph_project,
)

IGNORED_DIRS = frozenset({".berth", ".git", ".venv", "venv", "__pycache__", "node_modules"})


def load_project(path: Path | None = None) -> Project:
    """`path`: a langgraph.json file, or a folder holding one or a deep-agent folder."""
    target = (path or Path.cwd()).resolve()
    if target.is_file():
        return _langgraph(target)
    if not target.is_dir():
        raise ProjectError(f"{target}: no such file or folder")
    if (target / CONFIG_FILE).is_file():
        return _langgraph(target / CONFIG_FILE)
    if is_deep_agent_folder(target):
        try:
            folder = load_folder(target)
        except FolderError as e:
            raise ProjectError(str(e)) from None
        return deep_agent_project(folder, (target / ".env").is_file())
    raise ProjectError(
        f"{target}: no {CONFIG_FILE}, and not a deep-agent folder (no deepagents.toml "
        "or AGENTS.md); pass --config PATH"
    )


def _langgraph(config_path: Path) -> Project:
    root = config_path.parent
    data = decode_json(config_path.read_text(), str(config_path.name))
    env_text = None
    if isinstance(data, dict) and isinstance(data.get("env"), str):
        env_path = root / data["env"]
        env_text = env_path.read_text() if env_path.is_file() else None
    project = parse_langgraph_project(data, root, lambda rel: (root / rel).exists(), env_text)
    return dataclasses.replace(project, config_name=config_path.name)


def read_env_file(project: Project) -> dict[str, str]:
    """The project's `.env` (secret values: never printed)."""
    if project.env_file is None:
        return {}
    return parse_env_file((project.root / project.env_file).read_text())


def project_files(root: Path) -> list[Path]:
    """The files of the folder that an image or the reloader cares about, sorted."""
    out: list[Path] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in IGNORED_DIRS for part in rel.parts[:-1]) or rel.parts[0] in IGNORED_DIRS:
            continue
        if path.is_file() and path.suffix not in (".pyc",):
            out.append(path)
    return out
