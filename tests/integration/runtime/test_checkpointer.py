"""Berth's pooled checkpointer on a real Postgres: group-committed writes are read back in
order, flushed before a run is settled, and a failed write is reported to the run's owner."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import psycopg
import pytest
from berth_runtime.db.checkpointer import PooledPostgresSaver, batched_writes
from berth_runtime.db.migrate import migrate
from berth_runtime.db.pool import open_pool
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

pytestmark = pytest.mark.integration


class State(TypedDict, total=False):
    trail: Annotated[list[str], operator.add]


def _graph(saver: PooledPostgresSaver) -> Any:
    def step(name: str) -> Any:
        return lambda state: {"trail": [name]}

    builder = StateGraph(State)
    for name in ("a", "b", "c"):
        builder.add_node(name, step(name))
    builder.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return builder.compile(checkpointer=saver)


def _rows(database_uri: str, thread_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_uri) as conn:
        return conn.execute(
            "SELECT checkpoint_id, metadata ->> 'step' FROM checkpoints "
            "WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY checkpoint_id",
            (thread_id,),
        ).fetchall()


@pytest.mark.parametrize("durability", ["async", "exit", "sync"])
async def test_every_checkpoint_is_in_postgres_after_flush(
    database_uri: str, durability: str
) -> None:
    await migrate(database_uri, 30)
    pool = await open_pool(database_uri, 4, "test-cp")
    try:
        saver = PooledPostgresSaver(pool)
        graph = _graph(saver)
        thread_id = str(uuid.uuid4())
        config = {"configurable": {"thread_id": thread_id}}
        token = batched_writes.set(durability != "sync")
        try:
            await graph.ainvoke({"trail": []}, config, durability=durability)
        finally:
            batched_writes.reset(token)
        # Read your writes: the state read waits for the thread's queue.
        state = await graph.aget_state(config)
        assert state.values["trail"] == ["a", "b", "c"]
        await saver.flush(thread_id, consume=True)
        steps = [int(s) for _, s in _rows(database_uri, thread_id)]
        assert steps == ([-1, 0, 1, 2, 3] if durability != "exit" else [3])
        history = [c async for c in saver.alist(config)]
        assert [c.metadata["step"] for c in history] == sorted(steps, reverse=True)
    finally:
        await pool.close()


async def test_failed_batched_write_is_raised_to_the_owner_once(database_uri: str) -> None:
    await migrate(database_uri, 30)
    pool = await open_pool(database_uri, 4, "test-cp-fail")
    try:
        saver = PooledPostgresSaver(pool)
        graph = _graph(saver)
        thread_id = str(uuid.uuid4())
        config = {"configurable": {"thread_id": thread_id}}
        with psycopg.connect(database_uri, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'disk full (test)'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON checkpoints "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        token = batched_writes.set(True)
        try:
            await graph.ainvoke({"trail": []}, config)  # returns: writes are queued
        finally:
            batched_writes.reset(token)
        with pytest.raises(psycopg.errors.RaiseException):
            await saver.flush(thread_id)  # a reader sees the failure ...
        with pytest.raises(psycopg.errors.RaiseException):
            await saver.flush(thread_id, consume=True)  # ... and the owner takes it
        await saver.flush(thread_id)  # consumed: nothing left to report
    finally:
        await pool.close()


async def test_writes_outside_a_run_go_straight_to_postgres(database_uri: str) -> None:
    await migrate(database_uri, 30)
    pool = await open_pool(database_uri, 4, "test-cp-direct")
    try:
        saver = PooledPostgresSaver(pool)
        graph = _graph(saver)
        thread_id = str(uuid.uuid4())
        config = {"configurable": {"thread_id": thread_id}}
        await graph.aupdate_state(config, {"trail": ["x"]}, as_node="c")
        assert len(_rows(database_uri, thread_id)) == 1  # no flush needed
    finally:
        await pool.close()
