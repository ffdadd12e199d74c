"""`model = "berth:offline"`: a deterministic chat model for deep-agent folders.

It needs no key and no network, so a folder can be served, deployed and tested before a
provider is chosen. It reports what reached it: whether the instructions of `AGENTS.md`
and which skills are in its system prompt (put there by deepagents' memory and skills
middleware), and it lists the agent's own files with the real `ls` tool when asked
about files; `call <tool> {"arg": ...}` makes it call any tool it was given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

OFFLINE_MODEL = "berth:offline"
# "call <tool> {json args}": the model calls that tool (any tool: MCP, Python, built-in).
_CALL = re.compile(r"^\s*call\s+([A-Za-z0-9_-]+)\s*(\{.*\})?\s*$", re.DOTALL)


def _text(message: BaseMessage) -> str:
    return message.text if isinstance(message.text, str) else str(message.content)


def offline_reply(
    messages: Sequence[BaseMessage],
    agent: str,
    memory_marker: str | None,
    skills: Sequence[str],
    files_path: str,
) -> AIMessage:
    """The whole behaviour, as a pure function of the conversation."""
    system = "\n".join(_text(m) for m in messages if isinstance(m, SystemMessage))
    last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    request = _text(messages[last_human]) if last_human >= 0 else ""
    results = [m for m in messages[last_human + 1 :] if isinstance(m, ToolMessage)]
    if results:
        said = "; ".join(f"{r.name}: {_text(r).strip()}".replace("\n", " ") for r in results)
        return AIMessage(content=f"{agent}: {said}")
    call_match = _CALL.match(request)
    if call_match is not None:
        try:
            args = json.loads(call_match.group(2) or "{}")
        except json.JSONDecodeError:
            args = None
        if isinstance(args, dict):
            call = {"name": call_match.group(1), "args": args, "id": f"call_{len(messages)}"}
            return AIMessage(content="", tool_calls=[{**call, "type": "tool_call"}])
    if "files" in request.lower():
        call = {"name": "ls", "args": {"path": files_path}, "id": f"call_{len(messages)}"}
        return AIMessage(content="", tool_calls=[{**call, "type": "tool_call"}])
    memory = "none"
    if memory_marker is not None:
        memory = "loaded" if memory_marker in system else "missing"
    seen = [s for s in skills if s in system]
    return AIMessage(
        content=(
            f"{agent}: you said {request!r}. Instructions: {memory}. "
            f"Skills: {', '.join(seen) if seen else 'none'}."
        )
    )


class OfflineDeepAgentModel(BaseChatModel):
    """See the module docstring."""

    agent: str
    memory_marker: str | None = None
    skills: tuple[str, ...] = ()
    files_path: str = "/agent/"

    @property
    def _llm_type(self) -> str:
        return "berth-offline-deep-agent"

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
        reply = offline_reply(
            messages, self.agent, self.memory_marker, self.skills, self.files_path
        )
        return ChatResult(generations=[ChatGeneration(message=reply)])


def memory_marker(agents_md: str) -> str | None:
    """The first non-empty line of `AGENTS.md`: proof that its text reached the model."""
    for line in agents_md.splitlines():
        if line.strip():
            return line.strip()
    return None
