"""A deep agent whose shell and file tools run in a Berth sandbox Pod.

``graph`` is deepagents' ``create_deep_agent`` on ``berth_runtime.sandbox.sandbox_backend()``:
``execute``, ``ls``, ``read_file``, ``write_file``, ``edit_file``, ``glob`` and ``grep``
go to the executor of the sandbox claimed for the run's thread (an AgentDeployment with
``spec.sandbox``, see docs/sandbox-backend.md). It is not in this folder's
``langgraph.json`` because it needs a SandboxPool; an AgentDeployment names it as
``/app/deep_agent.py:graph`` (the runtime image bakes this folder into /app).

The chat model is ``DEEP_AGENT_MODEL`` (a ``provider:model`` string deepagents resolves,
e.g. ``anthropic:claude-sonnet-4-5``, with that provider's package and key) or, unset,
``OfflineSandboxModel``: deterministic, offline, it plays ``plan(workdir)`` one turn at a
time in the directory the first human message names (``workdir: /abs/path``; default
``/work``) and then answers with what the first command printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from berth_runtime.sandbox import sandbox_backend
from deepagents import create_deep_agent
from deepagents.backends.protocol import SandboxBackendProtocol
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

DEFAULT_WORKDIR = "/work"
Calls = list[tuple[str, dict[str, Any]]]

# The first command: what only the machine it runs on can answer.
PROBE = "echo sum=$((6*7)); echo host=$(uname -n); echo uid=$(id -u); echo pwd=$(pwd)"


def plan(workdir: str) -> list[Calls]:
    """One list of tool calls per model turn."""
    notes = f"{workdir}/notes.txt"
    return [
        [("execute", {"command": PROBE})],
        [("write_file", {"file_path": notes, "content": "alpha\nbeta\n"})],
        [("edit_file", {"file_path": notes, "old_string": "beta", "new_string": "gamma"})],
        [("read_file", {"file_path": notes})],
        [
            ("ls", {"path": workdir}),
            ("glob", {"pattern": "*.txt", "path": workdir}),
            ("grep", {"pattern": "gamma", "path": workdir, "output_mode": "content"}),
        ],
        [("execute", {"command": f"wc -l < {notes} && sha256sum {notes}"})],
    ]


def workdir_of(messages: Sequence[BaseMessage]) -> str:
    for m in messages:
        if isinstance(m, HumanMessage):
            text = str(m.content).strip()
            if text.startswith("workdir:"):
                return text.split(":", 1)[1].strip() or DEFAULT_WORKDIR
    return DEFAULT_WORKDIR


class OfflineSandboxModel(BaseChatModel):
    """Plays ``plan`` against the conversation: the turn is the number of AI messages so
    far, so a resumed or retried run continues where it stopped. No network."""

    @property
    def _llm_type(self) -> str:
        return "berth-offline-sandbox"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        steps = plan(workdir_of(messages))
        turn = sum(1 for m in messages if isinstance(m, AIMessage))
        if turn < len(steps):
            calls = [
                {"name": name, "args": args, "id": f"call_{turn}_{i}", "type": "tool_call"}
                for i, (name, args) in enumerate(steps[turn])
            ]
            reply = AIMessage(content="", tool_calls=calls)
        else:
            first = next(
                (str(m.content) for m in messages if isinstance(m, ToolMessage)), "(nothing)"
            )
            reply = AIMessage(content=f"Done. The sandbox answered:\n{first}")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def make_agent(backend: SandboxBackendProtocol) -> Any:
    """The deep agent on ``backend`` (tests pass deepagents' LocalShellBackend)."""
    model: str | BaseChatModel = os.environ.get("DEEP_AGENT_MODEL") or OfflineSandboxModel()
    return create_deep_agent(model=model, backend=backend)


# One backend serves every run: each call goes to the sandbox of the run's thread.
graph = make_agent(sandbox_backend())
