"""The pure pieces behind MCP, A2A and protocol v2: owner stamps, A2A input/task mapping,
v2 sequence numbers, namespace filters and message events."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from a2a.compat.v0_3 import types as a2a
from berth_runtime.api.a2a import RpcError, graph_input, task_json
from berth_runtime.api.mcp import _any_of
from berth_runtime.api.stream_v2 import _convert, _Messages, namespace_matches, seq_of
from berth_runtime.auth.filters import matches
from berth_runtime.auth.ownership import stamp_owner


def test_stamped_run_matches_its_owner_filter_only() -> None:
    meta = stamp_owner({"owner": "mallory", "topic": "x"}, {"owner": "alice"})
    assert meta == {"owner": "alice", "topic": "x"}  # the creator's filter wins
    assert matches(meta, {"owner": "alice"}) and not matches(meta, {"owner": "bob"})
    tagged = stamp_owner({}, {"teams": {"$contains": "red"}})
    assert matches(tagged, {"teams": {"$contains": "red"}})
    assert stamp_owner({"a": 1}, {}) == {"a": 1}


def _message(*parts: dict[str, Any]) -> a2a.Message:
    return a2a.Message.model_validate({"messageId": "m", "role": "user", "parts": list(parts)})


def test_a2a_message_to_graph_input() -> None:
    text = _message({"kind": "text", "text": "hi"}, {"kind": "text", "text": "there"})
    assert graph_input(text) == {"messages": [{"role": "user", "content": "hi\nthere"}]}
    data = _message({"kind": "data", "data": {"who": "x"}})
    assert graph_input(data) == {"who": "x"}
    with pytest.raises(RpcError) as err:
        graph_input(_message())
    assert err.value.code == -32602


def _run(status: str, result: Any = None) -> dict[str, Any]:
    return {"run_id": uuid.uuid4(), "thread_id": uuid.uuid4(), "status": status, "result": result}


def test_a2a_task_states_and_artifact() -> None:
    assert task_json(_run("pending"))["status"]["state"] == "submitted"
    assert task_json(_run("running"))["status"]["state"] == "working"
    assert task_json(_run("interrupted"))["status"]["state"] == "canceled"
    failed = task_json(_run("error", {"__error__": {"error": "ValueError", "message": "boom"}}))
    assert failed["status"]["state"] == "failed"
    assert failed["status"]["message"]["parts"][0]["text"] == "ValueError: boom"
    paused = task_json(_run("success", {"__interrupt__": [{"id": "i", "value": "?"}]}))
    assert paused["status"]["state"] == "input-required"
    chat = {"messages": [{"type": "human", "content": "q"}, {"type": "ai", "content": "a"}]}
    done = task_json(_run("success", chat))
    assert done["status"]["state"] == "completed"
    [artifact] = done["artifacts"]
    assert artifact["parts"][0] == {"kind": "text", "text": "a"}
    assert artifact["parts"][1] == {"kind": "data", "data": chat}


def test_v2_seq_and_namespaces() -> None:
    assert seq_of("1700000000000-0") < seq_of("1700000000000-7") < seq_of("1700000000001-0")
    assert namespace_matches(["a:1", "b:2"], None, None)
    assert namespace_matches(["a:1", "b:2"], [["a:1"]], None)
    assert not namespace_matches(["a:1", "b:2"], [["a:1"]], 0)
    assert namespace_matches(["a:1"], [["a:1"]], 0)
    assert not namespace_matches([], [["a:1"]], None)


def test_v2_message_chunks_become_one_text_block() -> None:
    m = _Messages()
    out: list[Any] = []
    for i, piece in enumerate(["The ", "sum ", "is 5."]):
        chunk = {"type": "AIMessageChunk", "id": "m1", "content": piece}
        if i == 2:
            chunk["chunk_position"] = "last"
        out += [d for _, d in _convert("messages", [chunk, {}], m)]
    events = [e["event"] for e in out]
    assert events[:2] == ["message-start", "content-block-start"]
    assert events[-2:] == ["content-block-finish", "message-finish"]
    assert "".join(e["delta"]["text"] for e in out if e["event"] == "content-block-delta") == (
        "The sum is 5."
    )
    assert out[-2]["content"] == {"type": "text", "text": "The sum is 5."}
    human = [{"type": "human", "id": "h", "content": "q"}, {}]
    assert _convert("messages", human, m) == []
    assert _convert("updates", {"n1": {"a": 1}, "n2": {"b": 2}}, m) == [
        ("updates", {"node": "n1", "values": {"a": 1}}),
        ("updates", {"node": "n2", "values": {"b": 2}}),
    ]


def test_mcp_schemas_accept_overlapping_unions() -> None:
    schema = {"properties": {"m": {"oneOf": [{"type": "object"}, {"oneOf": [{}]}]}}}
    assert _any_of(schema) == {
        "properties": {"m": {"anyOf": [{"type": "object"}, {"anyOf": [{}]}]}}
    }
