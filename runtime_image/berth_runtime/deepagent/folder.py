"""A deep-agent folder: `AGENTS.md`, `skills/`, `mcp.json` and `deepagents.toml`.

Pure parsers (text or decoded data in, frozen values out, `FolderError` naming the field
otherwise) plus `load_folder`, the one function here that reads files. The graph built
from the result lives in `berth_runtime.deepagent.graph`; the `berth` command reads the
same folder to build images and deployments.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_FILE = "deepagents.toml"
MEMORY_FILE = "AGENTS.md"
MCP_FILE = "mcp.json"
SKILLS_DIR = "skills"
SKILL_FILE = "SKILL.md"
# Where the folder shows up in the agent's file tools (read-only).
AGENT_ROUTE = "/agent/"

NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
SKILL_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")
_REF_PATTERN = re.compile(r"^\./[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$")
TOML_KEYS = (
    "name",
    "description",
    "model",
    "system_prompt",
    "tools",
    "interrupt_on",
    "sandbox",
    "crons",
    "env",
)
MCP_TRANSPORTS = ("stdio", "http", "streamable_http", "sse")


class FolderError(ValueError):
    """The folder cannot become an agent; the message names the file and the field."""


@dataclass(frozen=True)
class Skill:
    """One `skills/<name>/SKILL.md`: its front matter's name and description."""

    name: str
    description: str


@dataclass(frozen=True)
class McpServer:
    """One server of `mcp.json`: a command (stdio) or a URL (streamable HTTP or SSE)."""

    name: str
    transport: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AgentSettings:
    """What `deepagents.toml` declares (every key optional)."""

    name: str | None = None
    description: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    tools: tuple[str, ...] = ()
    interrupt_on: tuple[str, ...] = ()
    sandbox: Mapping[str, Any] | None = None
    crons: tuple[Mapping[str, Any], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeepAgentFolder:
    """Everything needed to serve the folder as a `create_deep_agent` graph."""

    root: Path
    name: str
    settings: AgentSettings
    has_memory: bool
    skills: tuple[Skill, ...]
    mcp_servers: tuple[McpServer, ...]


def is_deep_agent_folder(root: Path) -> bool:
    """A folder is a deep-agent folder when it has `deepagents.toml` or `AGENTS.md`."""
    return (root / CONFIG_FILE).is_file() or (root / MEMORY_FILE).is_file()


def default_name(folder_name: str) -> str:
    """The graph id when `name` is not set: the folder's name, lower-cased, dashes only."""
    name = re.sub(r"[^a-z0-9-]+", "-", folder_name.lower()).strip("-")[:40].strip("-")
    return name or "agent"


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise FolderError(f"{what} must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def parse_settings(text: str) -> AgentSettings:
    """Parse `deepagents.toml`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise FolderError(f"{CONFIG_FILE}: invalid TOML: {e}") from None
    unknown = sorted(set(data) - set(TOML_KEYS))
    if unknown:
        raise FolderError(
            f"{CONFIG_FILE}: unknown key {unknown[0]!r} (known keys: {', '.join(TOML_KEYS)})"
        )
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
        raise FolderError(
            f"{CONFIG_FILE}: name must be 1-40 lower-case letters, digits or '-', "
            f"starting and ending with a letter or digit; got {name!r}"
        )
    for key in ("description", "model", "system_prompt"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise FolderError(f"{CONFIG_FILE}: {key} must be a non-empty string, got {value!r}")
    tools = _str_list(data.get("tools", []), f"{CONFIG_FILE}: tools")
    for ref in tools:
        if not _REF_PATTERN.match(ref):
            raise FolderError(
                f"{CONFIG_FILE}: tools: {ref!r} must look like './tools.py:function' "
                "(a Python file in the folder and a name in it)"
            )
    interrupt_on = _str_list(data.get("interrupt_on", []), f"{CONFIG_FILE}: interrupt_on")
    sandbox = data.get("sandbox")
    if sandbox is not None:
        if not isinstance(sandbox, dict):
            raise FolderError(f"{CONFIG_FILE}: sandbox must be a table, got {sandbox!r}")
        from berth_runtime.sandbox.settings import parse_sandbox

        try:
            parse_sandbox(sandbox)
        except ValueError as e:
            raise FolderError(f"{CONFIG_FILE}: {str(e).removeprefix('langgraph.json: ')}") from None
        if not sandbox.get("pool"):
            raise FolderError(f"{CONFIG_FILE}: sandbox.pool is required (a SandboxPool name)")
    crons = data.get("crons", [])
    if not isinstance(crons, list) or not all(isinstance(c, dict) for c in crons):
        raise FolderError(f"{CONFIG_FILE}: crons must be an array of tables ([[crons]])")
    env = data.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(v, str | int | float | bool) for v in env.values()
    ):
        raise FolderError(f"{CONFIG_FILE}: env must be a table of strings")
    return AgentSettings(
        name=name,
        description=data.get("description"),
        model=data.get("model"),
        system_prompt=data.get("system_prompt"),
        tools=tools,
        interrupt_on=interrupt_on,
        sandbox=dict(sandbox) if sandbox is not None else None,
        crons=tuple(dict(c) for c in crons),
        env={str(k): _env_value(v) for k, v in env.items()},
    )


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pairs(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise FolderError(f"{what} must be an object of strings")
    return tuple(sorted((str(k), v) for k, v in value.items()))


def parse_mcp(text: str) -> tuple[McpServer, ...]:
    """Parse `mcp.json` in the format MCP clients share: `{"mcpServers": {name: {...}}}`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FolderError(f"{MCP_FILE}: invalid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise FolderError(f"{MCP_FILE}: mcpServers must be an object of servers")
    servers: list[McpServer] = []
    for name, raw in data["mcpServers"].items():
        where = f"{MCP_FILE}: mcpServers.{name}"
        if not isinstance(raw, dict):
            raise FolderError(f"{where} must be an object")
        if not re.match(r"^[A-Za-z0-9_-]+$", name):
            raise FolderError(f"{where}: a server name holds letters, digits, '_' or '-'")
        command, url = raw.get("command"), raw.get("url")
        if (command is None) == (url is None):
            raise FolderError(f"{where}: set exactly one of command (stdio) or url (HTTP)")
        transport = raw.get("transport") or raw.get("type") or ("stdio" if command else "http")
        if transport not in MCP_TRANSPORTS:
            raise FolderError(
                f"{where}.transport must be one of {', '.join(MCP_TRANSPORTS)}, got {transport!r}"
            )
        if command is not None:
            if not isinstance(command, str) or not command:
                raise FolderError(f"{where}.command must be a non-empty string")
            if transport != "stdio":
                raise FolderError(f"{where}.transport must be stdio for a command")
            servers.append(
                McpServer(
                    name=name,
                    transport="stdio",
                    command=command,
                    args=_str_list(raw.get("args", []), f"{where}.args") if raw.get("args") else (),
                    env=_pairs(raw.get("env"), f"{where}.env"),
                )
            )
        else:
            if not isinstance(url, str) or not re.match(r"^https?://", url):
                raise FolderError(f"{where}.url must be an http:// or https:// URL, got {url!r}")
            if transport == "stdio":
                raise FolderError(f"{where}.transport stdio needs a command, not a url")
            servers.append(
                McpServer(
                    name=name,
                    transport="sse" if transport == "sse" else "http",
                    url=url,
                    headers=_pairs(raw.get("headers"), f"{where}.headers"),
                )
            )
    return tuple(servers)


def parse_skill(text: str, folder_name: str) -> Skill:
    """A `SKILL.md`: YAML front matter with `name` (the folder's name) and `description`."""
    where = f"{SKILLS_DIR}/{folder_name}/{SKILL_FILE}"
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if match is None:
        raise FolderError(f"{where}: must start with YAML front matter between '---' lines")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as e:
        raise FolderError(f"{where}: front matter is not valid YAML: {e}") from None
    if not isinstance(meta, dict):
        raise FolderError(f"{where}: front matter must be a mapping with name and description")
    name, description = meta.get("name"), meta.get("description")
    if not isinstance(name, str) or not SKILL_NAME_PATTERN.match(name):
        raise FolderError(
            f"{where}: name must be 1-64 lower-case letters, digits or '-', got {name!r}"
        )
    if name != folder_name:
        raise FolderError(f"{where}: name {name!r} must match its folder name {folder_name!r}")
    if not isinstance(description, str) or not description.strip():
        raise FolderError(f"{where}: description must be a non-empty string")
    if len(description) > 1024:
        raise FolderError(f"{where}: description is longer than 1024 characters")
    return Skill(name=name, description=description.strip())


def assemble(
    root: Path,
    settings: AgentSettings,
    has_memory: bool,
    skills: Sequence[Skill],
    mcp_servers: Sequence[McpServer],
    py_files: frozenset[str],
) -> DeepAgentFolder:
    """Cross-file checks; `py_files` holds the folder's Python files, relative."""
    for ref in settings.tools:
        path = ref[2:].rpartition(":")[0]
        if path not in py_files:
            raise FolderError(f"{CONFIG_FILE}: tools: {ref!r}: no file {path} in the folder")
    if not has_memory and settings.system_prompt is None and not skills:
        raise FolderError(
            f"{root}: a deep-agent folder needs instructions: an {MEMORY_FILE}, a "
            f"system_prompt in {CONFIG_FILE}, or skills"
        )
    return DeepAgentFolder(
        root=root,
        name=settings.name or default_name(root.name),
        settings=settings,
        has_memory=has_memory,
        skills=tuple(sorted(skills, key=lambda s: s.name)),
        mcp_servers=tuple(mcp_servers),
    )


def load_folder(root: Path) -> DeepAgentFolder:
    """Read a deep-agent folder from disk and check it."""
    root = root.resolve()
    if not root.is_dir():
        raise FolderError(f"{root}: not a folder")
    toml_path = root / CONFIG_FILE
    settings = parse_settings(toml_path.read_text()) if toml_path.is_file() else AgentSettings()
    memory = root / MEMORY_FILE
    has_memory = memory.is_file()
    if has_memory and not memory.read_text().strip():
        raise FolderError(f"{MEMORY_FILE}: is empty")
    skills: list[Skill] = []
    skills_dir = root / SKILLS_DIR
    if skills_dir.exists():
        if not skills_dir.is_dir():
            raise FolderError(f"{SKILLS_DIR}: must be a folder of skill folders")
        for sub in sorted(skills_dir.iterdir()):
            if sub.name.startswith("."):
                continue
            if not sub.is_dir():
                raise FolderError(
                    f"{SKILLS_DIR}/{sub.name}: each skill is a folder holding {SKILL_FILE}"
                )
            skill_md = sub / SKILL_FILE
            if not skill_md.is_file():
                raise FolderError(f"{SKILLS_DIR}/{sub.name}: has no {SKILL_FILE}")
            skills.append(parse_skill(skill_md.read_text(), sub.name))
    mcp_path = root / MCP_FILE
    servers = parse_mcp(mcp_path.read_text()) if mcp_path.is_file() else ()
    py_files = frozenset(
        str(p.relative_to(root)) for p in root.rglob("*.py") if ".berth" not in p.parts
    )
    return assemble(root, settings, has_memory, skills, servers, py_files)
