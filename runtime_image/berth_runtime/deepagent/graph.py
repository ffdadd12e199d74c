"""Serve a deep-agent folder: `build_graph(folder)` -> a `create_deep_agent` graph.

The folder appears read-only at `/agent/` in the agent's file tools (so deepagents'
memory middleware reads `/agent/AGENTS.md` and its skills middleware `/agent/skills/`);
`.env` and `.berth/` are not readable. Other paths go to the thread's own files (state),
or to its sandbox when `deepagents.toml` names a `[sandbox] pool`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from berth_runtime.config import GraphSpec
from berth_runtime.deepagent.folder import (
    AGENT_ROUTE,
    MEMORY_FILE,
    SKILLS_DIR,
    DeepAgentFolder,
    FolderError,
    load_folder,
)
from berth_runtime.deepagent.mcp_tools import list_tools
from berth_runtime.deepagent.offline import OFFLINE_MODEL, OfflineDeepAgentModel, memory_marker

MODEL_ENV = "BERTH_DEEPAGENT_MODEL"
HIDDEN = (".env", ".env.*", ".berth/**", ".git/**")


def model_name(folder: DeepAgentFolder, env: Mapping[str, str]) -> str | None:
    """`BERTH_DEEPAGENT_MODEL` wins over `deepagents.toml`'s `model`; None: deepagents'."""
    return (env.get(MODEL_ENV) or "").strip() or folder.settings.model


def load_tools(folder: DeepAgentFolder) -> list[Any]:
    from berth_runtime.graphs.loader import import_graph_object

    tools: list[Any] = []
    for ref in folder.settings.tools:
        path, _, attr = ref[2:].rpartition(":")
        try:
            tools.append(import_graph_object(GraphSpec(f"tool {ref}", folder.root / path, attr)))
        except Exception as e:
            raise FolderError(f"deepagents.toml: tools: {ref!r}: {e}") from None
    return tools


def build_graph(root: Path, env: Mapping[str, str] | None = None) -> Any:
    """The compiled deep agent of the folder at `root`."""
    from deepagents import FilesystemPermission, create_deep_agent
    from deepagents.backends import CompositeBackend, FilesystemBackend, StateBackend

    env = os.environ if env is None else env
    folder = load_folder(root)
    name = model_name(folder, env)
    model: Any = name
    if name == OFFLINE_MODEL:
        memory = (folder.root / MEMORY_FILE).read_text() if folder.has_memory else ""
        marker = memory_marker(memory)
        model = OfflineDeepAgentModel(
            agent=folder.name,
            memory_marker=marker,
            skills=tuple(s.name for s in folder.skills),
            files_path=AGENT_ROUTE,
        )
    tools = load_tools(folder) + list_tools(folder.mcp_servers, folder.root)
    default: Any
    if folder.settings.sandbox is not None:
        from berth_runtime.sandbox import sandbox_backend

        default = sandbox_backend()
    else:
        default = StateBackend()
    backend = CompositeBackend(
        default=default,
        routes={AGENT_ROUTE: FilesystemBackend(root_dir=folder.root, virtual_mode=True)},
    )
    agent_root = AGENT_ROUTE.rstrip("/")
    permissions = [
        FilesystemPermission(operations=["write"], paths=[f"{agent_root}/**"], mode="deny"),
        FilesystemPermission(
            operations=["read"], paths=[f"{agent_root}/{p}" for p in HIDDEN], mode="deny"
        ),
    ]
    return create_deep_agent(
        model=model,
        tools=tools,
        system_prompt=folder.settings.system_prompt,
        backend=backend,
        memory=[f"{AGENT_ROUTE}{MEMORY_FILE}"] if folder.has_memory else None,
        skills=[f"{AGENT_ROUTE}{SKILLS_DIR}/"] if folder.skills else None,
        permissions=permissions,
        interrupt_on={t: True for t in folder.settings.interrupt_on} or None,
        name=folder.name,
    )
