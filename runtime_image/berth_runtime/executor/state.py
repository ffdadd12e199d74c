"""Shapes of thread state on the wire, and what a finished run means for its thread (pure)."""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from berth_runtime.serde import to_jsonable


def checkpoint_of(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    conf = config.get("configurable", {})
    return {
        "thread_id": conf.get("thread_id"),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
        "checkpoint_id": conf.get("checkpoint_id"),
        "checkpoint_map": conf.get("checkpoint_map"),
    }


def snapshot_to_json(s: StateSnapshot) -> dict[str, Any]:
    tasks = []
    for t in s.tasks:
        state: Any = None
        if isinstance(t.state, StateSnapshot):
            state = snapshot_to_json(t.state)
        elif t.state:
            state = {"checkpoint": checkpoint_of(t.state)}
        tasks.append(
            {
                "id": t.id,
                "name": t.name,
                "path": to_jsonable(t.path),
                "error": repr(t.error) if t.error else None,
                "interrupts": to_jsonable(t.interrupts),
                "checkpoint": checkpoint_of(t.state) if isinstance(t.state, dict) else None,
                "state": state,
                "result": to_jsonable(t.result),
            }
        )
    cp = checkpoint_of(s.config)
    parent = checkpoint_of(s.parent_config)
    return {
        "values": to_jsonable(s.values),
        "next": list(s.next),
        "tasks": tasks,
        "metadata": to_jsonable(s.metadata or {}),
        "created_at": s.created_at,
        "checkpoint": cp,
        "parent_checkpoint": parent,
        "checkpoint_id": cp["checkpoint_id"] if cp else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
        "interrupts": to_jsonable(list(s.interrupts)),
    }


def empty_state(thread_id: str) -> dict[str, Any]:
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": {},
        "created_at": None,
        "checkpoint": {
            "thread_id": thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": None,
            "checkpoint_map": None,
        },
        "parent_checkpoint": None,
        "checkpoint_id": None,
        "parent_checkpoint_id": None,
        "interrupts": [],
    }


def thread_interrupts(snapshot: dict[str, Any]) -> dict[str, list[Any]]:
    """{task_id: [interrupt, ...]} as threads expose them."""
    out: dict[str, list[Any]] = {}
    for task in snapshot.get("tasks", []):
        if task.get("interrupts"):
            out[task["id"]] = task["interrupts"]
    return out


def idle_status_for(snapshot: dict[str, Any], failed: bool) -> str:
    """Thread status once no run is active: error, interrupted (paused with work left) or idle."""
    if failed:
        return "error"
    if snapshot.get("next") or thread_interrupts(snapshot):
        return "interrupted"
    return "idle"


def final_output(values: Any, snapshot: dict[str, Any], error: dict[str, Any] | None) -> Any:
    """What /wait and /join answer: values, plus __interrupt__ or __error__."""
    interrupts = [i for task in snapshot.get("tasks", []) for i in task.get("interrupts") or []]
    if not interrupts and not error:
        return values
    out: dict[str, Any] = dict(values) if isinstance(values, dict) else {"values": values}
    if interrupts:
        out["__interrupt__"] = interrupts
    if error:
        out["__error__"] = error
    return out
