"""The chaos soak's graph: four steps, each recording its execution before it does anything.

Every execution of a step is a row in `soak_step` (written on a connection of its own and
committed before the step goes on, so it survives any kill). Each step appends
`<key>:<step>` to `trail` and sets its own primitive channel (`s1`..`s4`) to the run's key;
primitives live in the checkpoint row itself, where the soak's trigger on `checkpoints`
(tests/soak/checker.py) reads which steps of which run a checkpoint holds.

`SOAK_BREAK_RESUME=1` in a worker's environment is the deliberately broken variant (see the
end of this file): re-queued runs start over from their input instead of resuming from their
checkpoint, which the checker must report (steps re-executed past a checkpoint, wrong final
states).
"""

from __future__ import annotations

import asyncio
import operator
import os
import random
from typing import Annotated, Any

import psycopg
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

STEPS = ["s1", "s2", "s3", "s4"]


class State(TypedDict, total=False):
    key: str
    trail: Annotated[list[str], operator.add]
    s1: str
    s2: str
    s3: str
    s4: str


async def record(key: str, step: str) -> None:
    """Insert the execution row; Postgres may be restarting, so retry until it is back."""
    uri = os.environ["SOAK_LOG_URI"]
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                uri, autocommit=True, connect_timeout=3
            ) as conn:
                await conn.execute(
                    "INSERT INTO soak_step (key, step, pid) VALUES (%s, %s, %s)",
                    (key, step, os.getpid()),
                )
                return
        except psycopg.OperationalError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def make_step(name: str) -> Any:
    async def step(state: State) -> dict[str, Any]:
        key = state["key"]
        await record(key, name)
        await asyncio.sleep(random.uniform(0.05, 0.35))
        return {"trail": [f"{key}:{name}"], name: key}

    step.__name__ = name
    return step


builder = StateGraph(State)
for i, name in enumerate(STEPS):
    builder.add_node(name, make_step(name))
    builder.add_edge(START if i == 0 else STEPS[i - 1], name)
builder.add_edge(STEPS[-1], END)
graph = builder.compile()

if os.environ.get("SOAK_BREAK_RESUME") == "1":
    # A worker that forgets to resume: later attempts neither look for the run's checkpoint
    # (Berth's side) nor let LangGraph resume by itself (it would, seeing the run id of the
    # latest checkpoint), so they start over from the run's input.
    from berth_runtime.executor import run as _run

    async def _never_resume(rt: Any, run: dict[str, Any]) -> bool:
        return False

    _config = _run.run_config

    def _config_without_resume(run: dict[str, Any]) -> dict[str, Any]:
        config = _config(run)
        if run["attempt"] > 1:
            config["configurable"]["__pregel_resuming"] = False
        return config

    _run.resumes_from_checkpoint = _never_resume
    _run.run_config = _config_without_resume
