"""A graph written the way LangGraph's react-agent template writes it: a kw_only dataclass
`Context` with defaults (overridable from the environment in `__post_init__`), read as
`runtime.context.model` in the node and through `get_runtime(Context)` in a tool."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from langchain_core.messages import AIMessage, SystemMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime, get_runtime
from models import load_chat_model


@dataclass(kw_only=True)
class Context:
    system_prompt: str = field(default="You are a helpful AI assistant.")
    model: str = field(default="fake/default-model")
    max_search_results: int = field(default=10)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.init and getattr(self, f.name) == f.default:
                setattr(self, f.name, os.environ.get(f.name.upper(), f.default))


async def search(query: str) -> str:
    """Search for general web results (deterministic here)."""
    runtime = get_runtime(Context)
    return f"{runtime.context.max_search_results} results for {query}"


TOOLS = [search]


async def call_model(state: MessagesState, runtime: Runtime[Context]) -> dict[str, Any]:
    model = load_chat_model(runtime.context.model).bind_tools(TOOLS)
    system = SystemMessage(runtime.context.system_prompt)
    response = await model.ainvoke([system, *state["messages"]])
    return {"messages": [response]}


def route_model_output(state: MessagesState) -> Literal["__end__", "tools"]:
    last = state["messages"][-1]
    if not isinstance(last, AIMessage):
        raise ValueError(f"Expected AIMessage in output edges, but got {type(last).__name__}")
    return "tools" if last.tool_calls else END


builder = StateGraph(MessagesState, context_schema=Context)
builder.add_node(call_model)
builder.add_node("tools", ToolNode(TOOLS))
builder.add_edge(START, "call_model")
builder.add_conditional_edges("call_model", route_model_output)
builder.add_edge("tools", "call_model")
graph = builder.compile(name="ReAct Agent")
