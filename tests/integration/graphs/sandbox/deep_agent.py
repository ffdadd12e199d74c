"""A deep agent on Berth's sandbox backend, driven by a scripted fake chat model.

The first human message names a working directory (`workdir: /abs/path`); the model then
calls one file or shell tool per turn, in the order of SCRIPT, and finally answers. The
step is the number of AI turns so far, so a resumed or retried run continues the script.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from berth_runtime.sandbox import current_backend, sandbox_backend
from berth_runtime.sandbox.provider import SandboxProvider
from berth_runtime.sandbox.scoped import ScopedSandboxBackend
from berth_runtime.sandbox.settings import SandboxSettings
from deepagents import create_deep_agent
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool

Calls = list[tuple[str, dict[str, Any]]]


def script(d: str) -> list[Calls]:
    f = f"{d}/notes.txt"
    return [
        [("write_file", {"file_path": f, "content": "alpha\nbeta\n"})],
        [("edit_file", {"file_path": f, "old_string": "beta", "new_string": "gamma"})],
        [("execute", {"command": f"cat {f} && echo sum=$((6*7)) && echo oops >&2"})],
        [("read_file", {"file_path": f})],
        # Three independent tools at once: the sandbox is leased once, used concurrently.
        [
            ("ls", {"path": d}),
            ("glob", {"pattern": "*.txt", "path": d}),
            ("grep", {"pattern": "gamma", "path": d, "output_mode": "content"}),
        ],
        [("read_file", {"file_path": f"{d}/missing.txt"})],
        [("edit_file", {"file_path": f, "old_string": "nowhere", "new_string": "x"})],
        [("execute", {"command": "echo failing; exit 3"})],
    ]


def _workdir(messages: Sequence[BaseMessage]) -> str:
    for m in messages:
        if isinstance(m, HumanMessage) and str(m.content).startswith("workdir:"):
            return str(m.content).split(":", 1)[1].strip()
    raise ValueError("the first human message must be 'workdir: /abs/path'")


class ScriptedModel(BaseChatModel):
    """Plays SCRIPT against the conversation; no network, fully deterministic."""

    @property
    def _llm_type(self) -> str:
        return "berth-scripted"

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
        steps = script(_workdir(messages))
        turn = sum(1 for m in messages if isinstance(m, AIMessage))
        if turn < len(steps):
            calls = [
                {"name": name, "args": args, "id": f"call_{turn}_{i}", "type": "tool_call"}
                for i, (name, args) in enumerate(steps[turn])
            ]
            reply = AIMessage(content="", tool_calls=calls)
        else:
            reply = AIMessage(content="All sandbox steps done.")
        return ChatResult(generations=[ChatGeneration(message=reply)])


# A static graph: the backend finds each run's sandbox from the run's config.
graph = create_deep_agent(model=ScriptedModel(), backend=sandbox_backend())


def make_graph(config: RunnableConfig) -> Any:
    """The same agent from a factory, bound explicitly to the run it is built for."""
    return create_deep_agent(model=ScriptedModel(), backend=current_backend(config))


# As a runtime without any sandbox settings sees it (the server itself has one configured).
unconfigured = create_deep_agent(
    model=ScriptedModel(),
    backend=ScopedSandboxBackend(SandboxProvider(SandboxSettings(), None)),
)
