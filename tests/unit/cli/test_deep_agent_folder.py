"""Deep-agent folders: deepagents.toml, mcp.json, skills/ and AGENTS.md, each bad input
refused with the file and the field named; the example folder becomes a graph."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from berth_cli.load import load_project
from berth_cli.project import ProjectError
from berth_runtime.deepagent.folder import (
    FolderError,
    default_name,
    load_folder,
    parse_mcp,
    parse_settings,
    parse_skill,
)
from berth_runtime.deepagent.graph import build_graph
from langgraph.checkpoint.memory import InMemorySaver

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "deep-agent"


def test_settings_are_read() -> None:
    s = parse_settings(
        'name = "helper"\nmodel = "anthropic:claude-sonnet-4-5"\ntools = ["./t.py:search"]\n'
        'interrupt_on = ["execute"]\n[sandbox]\npool = "python"\nscope = "assistant"\n'
        '[env]\nA = 1\nB = true\n[[crons]]\nname = "x"\nschedule = "@daily"\n'
    )
    assert s.name == "helper" and s.model == "anthropic:claude-sonnet-4-5"
    assert s.tools == ("./t.py:search",) and s.interrupt_on == ("execute",)
    assert s.sandbox == {"pool": "python", "scope": "assistant"}
    assert s.env == {"A": "1", "B": "true"}
    assert s.crons == ({"name": "x", "schedule": "@daily"},)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = ", "deepagents.toml: invalid TOML"),
        ("modle = 'x'", "deepagents.toml: unknown key 'modle'"),
        ("name = 'Has Space'", "deepagents.toml: name must be 1-40 lower-case letters"),
        ("name = 3", "deepagents.toml: name must be"),
        ("model = ''", "deepagents.toml: model must be a non-empty string"),
        ("system_prompt = 1", "deepagents.toml: system_prompt must be a non-empty string"),
        ("tools = 'x'", "deepagents.toml: tools must be a list of non-empty strings"),
        ("tools = ['search']", "deepagents.toml: tools: 'search' must look like './tools.py"),
        ("interrupt_on = [1]", "deepagents.toml: interrupt_on must be a list"),
        ("sandbox = 'python'", "deepagents.toml: sandbox must be a table"),
        ("[sandbox]\nscope = 'thread'", "deepagents.toml: sandbox.pool is required"),
        ("[sandbox]\npool = 'p'\nscope = 'pod'", "sandbox.scope"),
        ("[sandbox]\npool = 'p'\nsize = 1", "deepagents.toml: unknown key(s) in 'sandbox': size"),
        ("crons = 'daily'", "deepagents.toml: crons must be an array of tables"),
        ("env = 'x'", "deepagents.toml: env must be a table of strings"),
    ],
)
def test_bad_settings(text: str, message: str) -> None:
    with pytest.raises(FolderError) as err:
        parse_settings(text)
    assert message in str(err.value)


def test_mcp_servers_are_read() -> None:
    servers = parse_mcp(
        '{"mcpServers": {"local": {"command": "python", "args": ["s.py"], "env": {"K": "v"}},'
        ' "remote": {"url": "https://mcp.example.com/mcp", "headers": {"A": "${TOKEN}"}},'
        ' "events": {"url": "http://x/sse", "transport": "sse"}}}'
    )
    local, remote, events = servers
    assert (local.transport, local.command, local.args, local.env) == (
        "stdio",
        "python",
        ("s.py",),
        (("K", "v"),),
    )
    assert (remote.transport, remote.url, remote.headers) == (
        "http",
        "https://mcp.example.com/mcp",
        (("A", "${TOKEN}"),),
    )
    assert events.transport == "sse"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "mcp.json: invalid JSON"),
        ("{}", "mcp.json: mcpServers must be an object of servers"),
        ('{"mcpServers": {"a": 1}}', "mcp.json: mcpServers.a must be an object"),
        ('{"mcpServers": {"a b": {"command": "x"}}}', "mcpServers.a b: a server name holds"),
        ('{"mcpServers": {"a": {}}}', "mcpServers.a: set exactly one of command (stdio) or url"),
        (
            '{"mcpServers": {"a": {"command": "x", "url": "http://x"}}}',
            "mcpServers.a: set exactly one of command",
        ),
        ('{"mcpServers": {"a": {"command": ""}}}', "mcpServers.a.command must be a non-empty"),
        ('{"mcpServers": {"a": {"command": "x", "args": "y"}}}', "mcpServers.a.args must be"),
        ('{"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}', "mcpServers.a.env must be"),
        ('{"mcpServers": {"a": {"url": "ftp://x"}}}', "mcpServers.a.url must be an http://"),
        ('{"mcpServers": {"a": {"url": "http://x", "transport": "ws"}}}', "a.transport must be"),
        ('{"mcpServers": {"a": {"url": "http://x", "transport": "stdio"}}}', "stdio needs"),
        ('{"mcpServers": {"a": {"command": "x", "transport": "sse"}}}', "must be stdio for"),
        ('{"mcpServers": {"a": {"url": "http://x", "headers": []}}}', "a.headers must be"),
    ],
)
def test_bad_mcp(text: str, message: str) -> None:
    with pytest.raises(FolderError) as err:
        parse_mcp(text)
    assert message in str(err.value)


def test_a_skill_is_read() -> None:
    skill = parse_skill("---\nname: brew\ndescription: How to brew.\n---\n# Brew\n", "brew")
    assert (skill.name, skill.description) == ("brew", "How to brew.")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# no front matter", "skills/brew/SKILL.md: must start with YAML front matter"),
        ("---\nname: [\n---\n", "skills/brew/SKILL.md: front matter is not valid YAML"),
        ("---\n- a\n---\n", "front matter must be a mapping"),
        ("---\nname: Brew\ndescription: d\n---\n", "skills/brew/SKILL.md: name must be 1-64"),
        ("---\nname: other\ndescription: d\n---\n", "name 'other' must match its folder name"),
        ("---\nname: brew\n---\n", "skills/brew/SKILL.md: description must be a non-empty"),
        (f"---\nname: brew\ndescription: {'x' * 1025}\n---\n", "longer than 1024 characters"),
    ],
)
def test_bad_skills(text: str, message: str) -> None:
    with pytest.raises(FolderError) as err:
        parse_skill(text, "brew")
    assert message in str(err.value)


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"deepagents.toml": "model = 'x'"}, "a deep-agent folder needs instructions"),
        ({"AGENTS.md": "  \n"}, "AGENTS.md: is empty"),
        ({"AGENTS.md": "hi", "skills": "x"}, "skills: must be a folder of skill folders"),
        ({"AGENTS.md": "hi", "skills/a.md": "x"}, "skills/a.md: each skill is a folder"),
        ({"AGENTS.md": "hi", "skills/a/README.md": "x"}, "skills/a: has no SKILL.md"),
        (
            {"AGENTS.md": "hi", "deepagents.toml": "tools = ['./t.py:f']"},
            "tools: './t.py:f': no file t.py in the folder",
        ),
        ({"AGENTS.md": "hi", "mcp.json": "[]"}, "mcp.json: mcpServers must be an object"),
    ],
)
def test_bad_folders(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(FolderError) as err:
        load_folder(write(tmp_path, files))
    assert message in str(err.value)


def test_names() -> None:
    assert default_name("My Agent_2") == "my-agent-2"
    assert default_name("___") == "agent"


def test_the_example_folder_is_a_project() -> None:
    project = load_project(EXAMPLE)
    assert project.kind == "deepagent" and project.name == "concierge"
    assert project.graphs == {"concierge": "./berth_deep_agent.py:graph"}
    assert [s.name for s in project.deep_agent.skills] == ["brew-guide", "grinder-care"]  # type: ignore[union-attr]
    [cron] = project.crons
    assert cron.name == "morning-brief" and cron.spec["assistantId"] == "concierge"


def test_a_folder_without_anything_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"no langgraph\.json, and not a deep-agent folder"):
        load_project(tmp_path)


def test_the_example_graph_reads_its_instructions_skills_and_mcp_tool() -> None:
    graph = build_graph(EXAMPLE, env={"BERTH_DEEPAGENT_MODEL": "berth:offline"})
    graph = graph.copy(update={"checkpointer": InMemorySaver()})

    async def ask(text: str) -> str:
        config = {"configurable": {"thread_id": "t"}}
        out = await graph.ainvoke({"messages": [{"role": "user", "content": text}]}, config)
        return str(out["messages"][-1].content)

    assert asyncio.run(ask("hello")) == (
        "concierge: you said 'hello'. Instructions: loaded. Skills: brew-guide, grinder-care."
    )
    hours = asyncio.run(ask('call opening_hours {"day": "monday"}'))
    assert hours == "concierge: opening_hours: Monday: closed"
    denied = asyncio.run(ask('call write_file {"file_path": "/agent/x.md", "content": "x"}'))
    assert "permission denied for write on /agent/x.md" in denied
    assert not (EXAMPLE / "x.md").exists()
