"""SSE framing, stream-mode names and the wire encoding of graph values."""

from __future__ import annotations

from berth_runtime.executor.state import final_output, idle_status_for, thread_interrupts
from berth_runtime.serde import to_jsonable
from berth_runtime.streams.sse import (
    HEARTBEAT,
    event_name,
    format_sse,
    langgraph_modes,
    wanted,
)
from langchain_core.messages import AIMessage
from langgraph.types import Interrupt, Send


def test_format_sse_frames() -> None:
    assert format_sse("values", b'{"a":1}', "5-0") == b'event: values\ndata: {"a":1}\nid: 5-0\n\n'
    assert format_sse("end", b"") == b"event: end\ndata: null\n\n"
    assert format_sse("x", b"a\nb") == b"event: x\ndata: a\ndata: b\n\n"
    assert HEARTBEAT.startswith(b":")


def test_event_names_and_modes() -> None:
    assert event_name("values", ()) == "values"
    assert event_name("updates", ("child:1", "inner:2")) == "updates|child:1|inner:2"
    assert langgraph_modes(["values", "messages-tuple", "messages", "events"]) == [
        "values",
        "messages",
    ]
    assert wanted("values|child:1", ["values"]) and not wanted("updates", ["values"])
    assert wanted("end", ["values"]) and wanted("metadata", []) and wanted("x", None)
    assert wanted("messages", ["messages-tuple"])


def test_graph_values_encode_like_the_agent_server() -> None:
    data = to_jsonable(
        {
            "m": AIMessage(content="hi", id="1"),
            "i": (Interrupt(value={"q": 1}, id="abc"),),
            "s": Send("node", {"x": 1}),
        }
    )
    assert data["m"]["type"] == "ai" and data["m"]["content"] == "hi"
    assert data["i"] == [{"value": {"q": 1}, "id": "abc"}]
    assert data["s"] == {"node": "node", "arg": {"x": 1}}


def test_final_output_and_thread_status() -> None:
    paused = {"next": ["ask"], "tasks": [{"id": "t1", "interrupts": [{"value": 1, "id": "i"}]}]}
    assert final_output({"a": 1}, paused, None) == {
        "a": 1,
        "__interrupt__": [{"value": 1, "id": "i"}],
    }
    err = {"error": "ValueError", "message": "x"}
    assert final_output({"a": 1}, {}, err) == {"a": 1, "__error__": err}
    assert final_output({"a": 1}, {"next": []}, None) == {"a": 1}
    assert thread_interrupts(paused) == {"t1": [{"value": 1, "id": "i"}]}
    assert idle_status_for(paused, False) == "interrupted"
    assert idle_status_for({"next": ["s3"], "tasks": []}, False) == "interrupted"
    assert idle_status_for({"next": [], "tasks": []}, False) == "idle"
    assert idle_status_for({}, True) == "error"


def test_prometheus_rendering() -> None:
    from berth_runtime.metrics import Snapshot, render_prometheus

    snap = Snapshot(pending=3, running=2, worker_slots=10, worker_active=2, finished={"success": 5})
    text = render_prometheus(snap).decode()
    assert "berth_runs_pending 3.0" in text and "berth_worker_active_runs 2.0" in text
    assert 'berth_runs_finished_total{status="success"} 5.0' in text
    assert snap.as_json()["workers"] == {"slots": 10, "active": 2, "available": 8}
