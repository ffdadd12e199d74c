"""The deterministic chat model behind every compat graph (no network, no key).

`load_chat_model("provider/name")` mirrors the LangGraph templates' helper of the same name;
here every name gives langchain_core's FakeMessagesListChatModel with scripted replies: a
tool call when tools are bound and the conversation has no tool answer yet, else a text
reply naming the model, so tests can tell which model a run used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import Field


class ScriptedModel(FakeMessagesListChatModel):
    """FakeMessagesListChatModel that accepts `bind_tools` and picks its reply by state."""

    model_name: str = "fake/echo"
    tool_names: list[str] = Field(default_factory=list)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        names = [
            t.name if isinstance(t, BaseTool) else getattr(t, "__name__", str(t)) for t in tools
        ]
        return ScriptedModel(responses=self.responses, model_name=self.model_name, tool_names=names)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        answered = any(isinstance(m, ToolMessage) for m in messages)
        if self.tool_names and not answered:
            reply = AIMessage(
                content="",
                tool_calls=[{"name": self.tool_names[0], "args": {"query": "berth"}, "id": "c1"}],
            )
        else:
            tools = ",".join(self.tool_names) or "none"
            reply = AIMessage(content=f"[{self.model_name}] tools={tools} n={len(messages)}")
        self.responses = [reply]
        self.i = 0
        return super()._generate(messages, *args, **kwargs)


def load_chat_model(fully_specified_name: str) -> ScriptedModel:
    return ScriptedModel(responses=[AIMessage(content="")], model_name=fully_specified_name)
