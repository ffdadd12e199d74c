"""The benchmark's trivial graph: one node, no model, so the server's overhead is what is timed."""

from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class EchoState(TypedDict, total=False):
    text: str
    reply: str


def echo(state: EchoState) -> EchoState:
    return {"reply": state.get("text", "")}


builder = StateGraph(EchoState)
builder.add_node("echo", echo)
builder.add_edge(START, "echo")
builder.add_edge("echo", END)
graph = builder.compile(name="echo")
