"""The two message stream modes of the API, built from LangGraph's `messages` stream.

`messages-tuple` forwards each `(message chunk, metadata)` pair as a `messages` event.
`messages` sends `messages/metadata` the first time a message id shows up, then
`messages/partial` with the message accumulated so far (for streamed chunks) or
`messages/complete` (for whole messages).
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessageChunk

from berth_runtime.streams.sse import event_name


class MessageEvents:
    def __init__(self, requested: list[str]) -> None:
        self.tuples = "messages-tuple" in requested
        self.full = "messages" in requested
        self._acc: dict[str, Any] = {}

    def events(self, namespace: tuple[str, ...], chunk: Any) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        msg, meta = chunk if isinstance(chunk, tuple | list) and len(chunk) == 2 else (chunk, {})
        if self.tuples:
            out.append((event_name("messages", namespace), [msg, meta]))
        if self.full:
            mid = str(getattr(msg, "id", None) or id(msg))
            if mid not in self._acc:
                out.append((event_name("messages/metadata", namespace), {mid: {"metadata": meta}}))
            if isinstance(msg, BaseMessageChunk):
                prev = self._acc.get(mid)
                acc = msg if prev is None else prev + msg
                self._acc[mid] = acc
                out.append((event_name("messages/partial", namespace), [acc]))
            else:
                self._acc[mid] = msg
                out.append((event_name("messages/complete", namespace), [msg]))
        return out
