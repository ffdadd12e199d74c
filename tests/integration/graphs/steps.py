"""Five slow steps, each appending a line to a side-effect file (path in the run's context).

Counting the lines per step shows which steps really executed, across worker crashes.
Exported as an uncompiled StateGraph so the server compiles it.
"""

from __future__ import annotations

import asyncio
import operator
import os
from typing import Annotated, Any

from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

STEPS = ["s1", "s2", "s3", "s4", "s5"]


class State(TypedDict, total=False):
    done: Annotated[list[str], operator.add]


def make_step(name: str) -> Any:
    async def step(state: State) -> dict[str, Any]:
        conf = get_config().get("configurable", {})
        path = conf.get("side_effects")
        if path:
            with open(path, "a") as f:  # noqa: ASYNC230 - a tiny append, on purpose
                f.write(f"{conf.get('run_id')}:{name}:{os.getpid()}\n")
        if conf.get("crash_at") == name:
            os._exit(137)  # like an OOM kill: no cleanup, no final write
        await asyncio.sleep(float(conf.get("sleep", 0.0)))
        return {"done": [name]}

    return step


builder = StateGraph(State)
for i, name in enumerate(STEPS):
    builder.add_node(name, make_step(name))
    builder.add_edge(START if i == 0 else STEPS[i - 1], name)
builder.add_edge(STEPS[-1], END)
