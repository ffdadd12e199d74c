"""A tool-calling agent driven by a deterministic fake chat model (no network)."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from typing_extensions import TypedDict


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def model_turn(state: State) -> dict[str, Any]:
    """Ask for the tool first, then answer with its result.

    The tool-call turn uses a non-streaming fake (GenericFakeChatModel drops tool calls when
    it streams); the answer streams token by token, so `messages` streaming has chunks.
    """
    last = state["messages"][-1]
    model: Any
    if isinstance(last, ToolMessage):
        reply = AIMessage(content=f"The sum is {last.content}.")
        model = GenericFakeChatModel(messages=iter([reply]))
    else:
        reply = AIMessage(
            content="",
            tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "call_add_1"}],
        )
        model = FakeMessagesListChatModel(responses=[reply])
    return {"messages": [model.invoke(state["messages"])]}


def route(state: State) -> str:
    last = state["messages"][-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else END


graph = (
    StateGraph(State)
    .add_node("model", model_turn)
    .add_node("tools", ToolNode([add]))
    .add_edge(START, "model")
    .add_conditional_edges("model", route, ["tools", END])
    .add_edge("tools", "model")
    .compile()
)
