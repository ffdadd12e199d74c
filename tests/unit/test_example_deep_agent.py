"""The example deep agent (examples/agent/deep_agent.py) run in process on deepagents' own
LocalShellBackend: its offline model drives every file and shell tool for real, in a
temporary directory, and answers with what the first command printed."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from deepagents.backends import LocalShellBackend
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from examples.agent import deep_agent


def _run(tmp_path: Path) -> list[Any]:
    backend = LocalShellBackend(root_dir=tmp_path, virtual_mode=False)
    out = deep_agent.make_agent(backend).invoke(
        {"messages": [HumanMessage(f"workdir: {tmp_path}")]}, {"recursion_limit": 50}
    )
    return list(out["messages"])


def test_offline_model_drives_every_sandbox_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEP_AGENT_MODEL", raising=False)
    messages = _run(tmp_path)
    tools = [m for m in messages if isinstance(m, ToolMessage)]
    names = [t.name for t in tools]
    assert names == [
        "execute",
        "write_file",
        "edit_file",
        "read_file",
        "ls",
        "glob",
        "grep",
        "execute",
    ], names
    probe = str(tools[0].content)
    assert "sum=42" in probe and f"host={socket.gethostname()}" in probe, probe
    assert (tmp_path / "notes.txt").read_text() == "alpha\ngamma\n"
    assert "gamma" in str(tools[3].content) and "beta" not in str(tools[3].content)
    assert "notes.txt" in str(tools[4].content) and "notes.txt" in str(tools[5].content)
    assert "gamma" in str(tools[6].content)
    assert str(tools[7].content).startswith("2\n"), tools[7].content
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert "sum=42" in str(final.content)


def test_workdir_defaults_to_the_pools_workspace() -> None:
    assert deep_agent.workdir_of([HumanMessage("hello")]) == "/work"
    assert deep_agent.workdir_of([HumanMessage("workdir: /data/x")]) == "/data/x"
    assert deep_agent.plan("/w")[1][0][1]["file_path"] == "/w/notes.txt"
