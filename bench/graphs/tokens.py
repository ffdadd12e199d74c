"""The stream-latency benchmark's graph: one node whose fake chat model streams N tokens.

Each token's text is `<index>@<wall-clock time it was produced>;` (a timestamp in the content,
as chunk metadata would be merged into the final message), so a client on the same machine can
compute model token -> client latency per token.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages


class TimedTokenModel(BaseChatModel):
    """Streams `n` tokens, `interval` seconds apart, each stamped with its emission time."""

    n: int = 100
    interval: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "bench-timed-tokens"

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        text = "".join(f"t{i} " for i in range(self.n))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for i in range(self.n):
            await asyncio.sleep(self.interval)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=f"{i}@{time.time():.6f};"))
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    n: int
    interval: float


async def model(state: State) -> dict[str, Any]:
    llm = TimedTokenModel(n=state.get("n", 100), interval=state.get("interval", 0.0))
    answer = await llm.ainvoke(state.get("messages", []))
    # The whole answer is long; the benchmark only needs the stream, so keep the state small.
    return {"messages": [AIMessage(content=f"{len(answer.content)} chars", id=answer.id)]}


graph = (
    StateGraph(State)
    .add_node("model", model)
    .add_edge(START, "model")
    .add_edge("model", END)
    .compile(name="tokens")
)
