"""Server-sent event framing and stream-mode naming (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

HEARTBEAT = b": heartbeat\n\n"


def format_sse(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One SSE frame. `data` is JSON, so it holds no raw newlines; split anyway to be safe."""
    lines = [b"event: " + event.encode()]
    for chunk in data.split(b"\n") if data else [b"null"]:
        lines.append(b"data: " + chunk)
    if event_id is not None:
        lines.append(b"id: " + event_id.encode())
    return b"\n".join(lines) + b"\n\n"


def event_name(mode: str, namespace: Sequence[str]) -> str:
    """`values` at the root, `values|parent:<id>|child:<id>` inside subgraphs."""
    return "|".join([mode, *namespace]) if namespace else mode


# What the client asks for -> what LangGraph's astream streams.
_LANGGRAPH_MODE = {
    "values": "values",
    "updates": "updates",
    "messages": "messages",
    "messages-tuple": "messages",
    "custom": "custom",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
    "debug": "debug",
}


def langgraph_modes(requested: Iterable[str]) -> list[str]:
    """LangGraph stream modes for requested API modes (`events` has no LangGraph equivalent)."""
    out: list[str] = []
    for mode in requested:
        lg = _LANGGRAPH_MODE.get(mode)
        if lg is not None and lg not in out:
            out.append(lg)
    return out


ALWAYS_SENT = frozenset({"metadata", "error", "end"})
# The run's result, written just before `end` for the API's own /wait and /join; never sent to
# a client (streams/reader.py drops it).
RESULT_EVENT = "__result__"


def wanted(event: str, requested: Iterable[str] | None) -> bool:
    """Whether a join-stream that asked for `requested` modes gets this event."""
    if requested is None:
        return True
    base = event.split("|", 1)[0].split("/", 1)[0]
    if base in ALWAYS_SENT:
        return True
    modes = set(requested)
    if not modes:
        return True
    return base in modes or (base == "messages" and "messages-tuple" in modes)
