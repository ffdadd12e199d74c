"""A chat turn streamed token by token, custom progress events, and a subgraph.

`TokenChatModel` is a real `BaseChatModel` whose `_stream`/`_astream` yield one chunk per word
(with an optional delay from the run's `configurable.token_delay`), so LangGraph's `messages`
stream sees every token as the model produces it, exactly as with a streaming LLM client.
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

DEFAULT_REPLY = "Berth streams every token of this answer to you as it is made"


def tokens(text: str) -> list[str]:
    """Words with their following space, so the chunks concatenate back to `text`."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


class TokenChatModel(BaseChatModel):
    reply: str = DEFAULT_REPLY
    delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "berth-token-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for tok in tokens(self.reply):
            time.sleep(self.delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=tok))
            if run_manager is not None:
                run_manager.on_llm_new_token(tok, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for tok in tokens(self.reply):
            await asyncio.sleep(self.delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=tok))
            if run_manager is not None:
                await run_manager.on_llm_new_token(tok, chunk=chunk)
            yield chunk


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    trail: Annotated[list[str], operator.add]
    inner: str


class ChildState(TypedDict, total=False):
    """Shares only `inner` with the parent, so the subgraph's output adds nothing twice."""

    inner: str


async def model(state: State, config: RunnableConfig) -> dict[str, Any]:
    conf = config.get("configurable", {})
    llm = TokenChatModel(
        reply=str(conf.get("reply") or DEFAULT_REPLY), delay=float(conf.get("token_delay", 0.0))
    )
    answer = await llm.ainvoke(state.get("messages", []), config)
    return {"messages": [answer], "trail": ["model"]}


def inner(state: ChildState) -> dict[str, Any]:
    write = get_stream_writer()
    write({"progress": "inner"})
    return {"inner": "done"}


child = StateGraph(ChildState).add_node("inner", inner).add_edge(START, "inner").compile()


def finish(state: State) -> dict[str, Any]:
    write = get_stream_writer()
    for i in range(3):
        write({"progress": i})
    return {"trail": ["finish"]}


graph = (
    StateGraph(State)
    .add_node("model", model)
    .add_node("child", child)
    .add_node("finish", finish)
    .add_edge(START, "model")
    .add_edge("model", "child")
    .add_edge("child", "finish")
    .add_edge("finish", END)
    .compile()
)

# The whole chat graph as one node of a parent: tokens come from two levels of subgraph.
nested = StateGraph(State).add_node("agent", graph).add_edge(START, "agent").compile()
