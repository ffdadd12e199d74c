"""A long job in steps: shows durable execution, and lets tests prove it.

Each step takes `seconds`, appends its number to the state (checkpointed after every
step) and records that it ran in the long-term store, which lives in Postgres and outlives
any process. Kill the process running it mid-job: the run goes on elsewhere from the last
checkpoint, and the record shows which steps ran twice (at most the one in flight) and in
which Pods (`host`).
"""

from __future__ import annotations

import asyncio
import operator
import os
import socket
import uuid
from typing import Annotated, Any, TypedDict

from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

MAX_STEPS = 20  # under LangGraph's default recursion limit of 25 super-steps
MAX_SECONDS = 60.0


class PipelineState(TypedDict, total=False):
    steps: int
    seconds: float
    done: Annotated[list[int], operator.add]


def record_namespace(thread_id: str) -> tuple[str, ...]:
    """Where a thread's step records live in the store."""
    return ("pipeline", thread_id)


def check_input(state: PipelineState) -> tuple[int, float]:
    """The job's size, bounded so a typo cannot occupy a worker for hours."""
    steps, seconds = int(state.get("steps", 3)), float(state.get("seconds", 0.5))
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    if not 0 <= seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be between 0 and {MAX_SECONDS}, got {seconds}")
    return steps, seconds


async def step(state: PipelineState, runtime: Runtime[Any]) -> dict[str, list[int]]:
    """One unit of work: record the attempt, take the time, report it done."""
    _, seconds = check_input(state)
    number = len(state.get("done", [])) + 1
    thread_id = str(get_config()["configurable"].get("thread_id", "none"))
    if runtime.store is not None:
        record = {"step": number, "host": socket.gethostname(), "pid": os.getpid()}
        await runtime.store.aput(record_namespace(thread_id), uuid.uuid4().hex, record)
    await asyncio.sleep(seconds)
    return {"done": [number]}


def more_to_do(state: PipelineState) -> str:
    steps, _ = check_input(state)
    return "step" if len(state.get("done", [])) < steps else END


builder = StateGraph(PipelineState)
builder.add_node("step", step)
builder.add_edge(START, "step")
builder.add_conditional_edges("step", more_to_do, ["step", END])
graph = builder.compile(name="pipeline")
