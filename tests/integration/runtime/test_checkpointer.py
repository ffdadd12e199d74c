"""Berth's pooled checkpointer on a real Postgres: group-committed writes are read back in
order, flushed before a run is settled, and a failed write is reported to the run's owner."""

from __future__ import annotations

import operator
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import psycopg
import pytest
from berth_runtime.db.checkpointer import PooledPostgresSaver, batched_writes
from berth_runtime.db.migrate import migrate
from berth_runtime.db.pool import open_pool
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_uri: str) -> AsyncIterator[Any]:
    """Berth's schema (LangGraph's tables included) and a pool on a fresh database."""
    await migrate(database_uri, 30)
    pool = await open_pool(database_uri, 4, "test-cp")
    try:
        yield pool
    finally:
        await pool.close()


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
    database_uri: str, pool: Any, durability: str
) -> None:
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


async def test_failed_batched_write_is_raised_to_the_owner_once(
    database_uri: str, pool: Any
) -> None:
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


async def test_writes_outside_a_run_go_straight_to_postgres(database_uri: str, pool: Any) -> None:
    saver = PooledPostgresSaver(pool)
    graph = _graph(saver)
    thread_id = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread_id}}
    await graph.aupdate_state(config, {"trail": ["x"]}, as_node="c")
    assert len(_rows(database_uri, thread_id)) == 1  # no flush needed


def _table(database_uri: str, thread_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """What a thread left in LangGraph's tables, without the ids that differ between runs."""
    with psycopg.connect(database_uri) as conn:
        return {
            "blobs": conn.execute(
                "SELECT checkpoint_ns, channel, type, blob FROM checkpoint_blobs "
                "WHERE thread_id = %s ORDER BY 1, 2, 3, 4",
                (thread_id,),
            ).fetchall(),
            "checkpoints": conn.execute(
                "SELECT checkpoint_ns, metadata ->> 'step', metadata ->> 'source', "
                "parent_checkpoint_id IS NULL, checkpoint -> 'channel_values' "
                "FROM checkpoints WHERE thread_id = %s ORDER BY checkpoint_id",
                (thread_id,),
            ).fetchall(),
            "writes": conn.execute(
                # an interrupt's id is derived from its task's, which differs between threads
                "SELECT checkpoint_ns, idx, channel, type, "
                "CASE WHEN channel = '__interrupt__' THEN NULL ELSE blob END "
                "FROM checkpoint_writes WHERE thread_id = %s ORDER BY 1, 2, 3, 4, 5",
                (thread_id,),
            ).fetchall(),
        }


def _pausing_graph(saver: Any) -> Any:
    from langgraph.types import interrupt

    def ask(state: State) -> State:
        return {"trail": [str(interrupt({"question": "go on?"}))]}

    builder = StateGraph(State)
    builder.add_node("a", lambda state: {"trail": ["a"]})
    builder.add_node("ask", ask)
    builder.add_edge(START, "a").add_edge("a", "ask").add_edge("ask", END)
    return builder.compile(checkpointer=saver)


@pytest.mark.parametrize("durability", ["async", "sync"])
async def test_rows_are_those_langgraphs_own_saver_writes(
    database_uri: str, pool: Any, durability: str
) -> None:
    """Berth writes through one server-side function (berth_put_checkpoints); the rows must be
    the ones LangGraph's AsyncPostgresSaver writes, and that saver must read them back."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.types import Command

    ours, theirs = PooledPostgresSaver(pool), AsyncPostgresSaver(pool)
    threads = {}
    for name, saver in (("ours", ours), ("theirs", theirs)):
        graph = _pausing_graph(saver)
        config = {"configurable": {"thread_id": str(uuid.uuid4())}}
        token = batched_writes.set(saver is ours and durability != "sync")
        try:
            await graph.ainvoke({"trail": ["start"]}, config, durability=durability)
            await graph.ainvoke(Command(resume="yes"), config, durability=durability)
        finally:
            batched_writes.reset(token)
        await ours.flush(config["configurable"]["thread_id"], consume=True)
        threads[name] = config
    ours_rows = _table(database_uri, threads["ours"]["configurable"]["thread_id"])
    theirs_rows = _table(database_uri, threads["theirs"]["configurable"]["thread_id"])
    assert ours_rows == theirs_rows
    assert len(ours_rows["writes"]) > 0 and len(ours_rows["blobs"]) > 0
    # LangGraph's saver reads what Berth wrote: the same state and history.
    read_back = _pausing_graph(theirs)
    state = await read_back.aget_state(threads["ours"])
    assert state.values["trail"] == ["start", "a", "yes"] and state.next == ()
    history = [s async for s in read_back.aget_state_history(threads["ours"])]
    paused = [s for s in history if s.next == ("ask",)]
    assert paused and paused[0].tasks[0].interrupts[0].value == {"question": "go on?"}


async def test_a_batch_applies_upserts_in_call_order(pool: Any) -> None:
    """Within one group-committed batch a later save of the same checkpoint wins, a special
    write (an error) replaces the earlier one, and an ordinary write is kept once."""
    from langgraph.checkpoint.base import empty_checkpoint

    ERROR = "__error__"  # langgraph._internal._constants.ERROR, a special write (WRITES_IDX_MAP)

    saver = PooledPostgresSaver(pool)
    thread_id = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    token = batched_writes.set(True)
    try:
        saved = await saver.aput(config, checkpoint, {"step": 1, "source": "loop"}, {})
        await saver.aput(config, checkpoint, {"step": 2, "source": "loop"}, {})
        await saver.aput_writes(saved, [("trail", "first")], "task-1")
        await saver.aput_writes(saved, [("trail", "second")], "task-1")
        await saver.aput_writes(saved, [(ERROR, "boom 1")], "task-2")
        await saver.aput_writes(saved, [(ERROR, "boom 2")], "task-2")
    finally:
        batched_writes.reset(token)
    await saver.flush(thread_id, consume=True)
    got = await saver.aget_tuple(saved)
    assert got is not None and got.metadata["step"] == 2
    writes = {(task, channel): value for task, channel, value in got.pending_writes or []}
    assert writes == {("task-1", "trail"): "first", ("task-2", ERROR): "boom 2"}
