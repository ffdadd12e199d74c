"""LangGraph's Postgres checkpointer, tuned for a connection pool.

`AsyncPostgresSaver` is written for one shared connection as much as for a pool, and pays for
that on every call when given a pool:

- an `asyncio.Lock` around every query, which serializes all checkpoint reads and writes of
  the process (every run of every worker slot) although each call checks out its own pooled
  connection;
- an `asyncio.to_thread` hop to (de)serialize the blobs and writes of every call, which for the
  small values of a typical step costs more (thread hand-off, GIL ping-pong, loop wake-up) than
  the serialization itself.

It also group-commits the writes of runs whose durability allows it. Under LangGraph's
`async` durability (the default) and `exit`, a step does not wait for its checkpoint to be
written; LangGraph still chains every save after the previous one, each on its own pooled
connection and autocommitted statements. Inside such a run (`batched_writes` set by the
executor) `aput`/`aput_writes` serialize at once, queue the rows per thread and return;
one flusher per thread writes everything queued since its last round trip in one statement
(`berth_put_checkpoints`, migration 0004: one transaction, rows applied in call order), so a
checkpoint is never durable before the writes it was built from, nor before its parent.
Reads and deletes of a thread wait for its queue first (read your writes), and the worker
calls `flush(thread_id, consume=True)` before it records a run's outcome, so a run is never
reported done before its checkpoints are in Postgres; a failed write makes that call raise,
the run is not settled and its lease lapses into a retry. `sync` durability, and
every write outside a run (e.g. `update_state` from the API), goes straight to Postgres
through the same function.

Writing one jsonb batch through a server-side function instead of LangGraph's statements (a
pipelined transaction of an executemany per table) costs the client a fraction of the CPU.
This subclass keeps the same tables, rows, upsert rules and serializer, so checkpoints stay
readable by LangGraph's own saver (tests/integration/runtime/test_checkpointer.py compares
the rows both write).
"""

from __future__ import annotations

import asyncio
import binascii
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from berth_runtime.db import q
from berth_runtime.serde import dumps_bytes

# Set (True) by the executor for a run whose durability is `async` or `exit`.
batched_writes: ContextVar[bool] = ContextVar("berth_batched_checkpoint_writes", default=False)


def _b64(blob: bytes | None) -> str | None:
    return None if blob is None else binascii.b2a_base64(blob, newline=False).decode()


class _Batch:
    """Checkpoint rows of one thread in call order, as the one jsonb document that
    `berth_put_checkpoints` (migration 0004) takes: one statement writes them all."""

    def __init__(self) -> None:
        self.blobs: list[tuple[Any, ...]] = []
        self.checkpoints: list[tuple[Any, ...]] = []
        self.writes: list[tuple[Any, ...]] = []

    def __bool__(self) -> bool:
        return bool(self.blobs or self.checkpoints or self.writes)

    def blob(self, ns: str, channel: str, version: str, type_: str, blob: bytes | None) -> None:
        self.blobs.append((ns, channel, version, type_, _b64(blob)))

    def checkpoint(
        self, ns: str, checkpoint_id: str, parent: str | None, data: bytes, meta: bytes
    ) -> None:
        """`data` and `meta`: JSON already encoded (so later changes to the objects are not
        written, as LangGraph's own saver guarantees by writing at once)."""
        self.checkpoints.append(
            (ns, checkpoint_id, parent, orjson.Fragment(data), orjson.Fragment(meta))
        )

    def write(self, row: Sequence[Any], upsert: bool) -> None:
        """`row`: LangGraph's _dump_writes tuple without its thread id."""
        *head, blob = row
        self.writes.append((*head, _b64(blob), upsert))

    def params(self, thread_id: str) -> dict[str, Any]:
        doc = orjson.dumps({"b": self.blobs, "c": self.checkpoints, "w": self.writes})
        return {"thread_id": thread_id, "batch": Jsonb(doc, dumps=_as_is)}


@dataclass
class _Queue:
    """One thread's checkpoint writes not yet in Postgres, and the task writing them."""

    batch: _Batch = field(default_factory=_Batch)
    task: asyncio.Task[None] | None = None
    error: BaseException | None = None


def _inline(value: Any) -> bool:
    """Primitive channel values live in the checkpoint row itself, the rest in blobs."""
    return value is None or isinstance(value, str | int | float | bool)


def _as_is(data: Any) -> Any:
    return data


class PooledPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` for a pool: no process-wide lock, no thread hops, group-committed
    writes where the run's durability allows (see the module doc)."""

    def __init__(self, conn: AsyncConnectionPool[Any]) -> None:
        if not isinstance(conn, AsyncConnectionPool):
            raise TypeError("PooledPostgresSaver needs a connection pool")
        super().__init__(conn)
        self._pool: AsyncConnectionPool[Any] = conn
        self._queues: dict[str, _Queue] = {}

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        async with self._pool.connection() as conn:
            if pipeline:
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur

    # writes ----------------------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        conf = config["configurable"]
        thread_id, checkpoint_ns = str(conf["thread_id"]), conf["checkpoint_ns"]
        values = dict(checkpoint["channel_values"])
        blobs: dict[str, Any] = {}
        for key, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blobs[key] = values.pop(key)
                values[key] = True
            elif not _inline(value):
                blobs[key] = values.pop(key)
        versions = {k: v for k, v in new_versions.items() if k in blobs}
        batch = self._batch(thread_id)
        for row in self._dump_blobs(thread_id, checkpoint_ns, blobs, versions):
            batch.blob(*row[1:])
        batch.checkpoint(
            checkpoint_ns,
            checkpoint["id"],
            conf.get("checkpoint_id"),
            dumps_bytes({**checkpoint, "channel_values": values}),
            dumps_bytes(get_serializable_checkpoint_metadata(config, metadata)),
        )
        await self._submit(thread_id, batch)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        # LangGraph's rule: special writes (errors, interrupts, ...) replace, others keep.
        upsert = all(w[0] in WRITES_IDX_MAP for w in writes)
        batch = self._batch(thread_id)
        for row in self._dump_writes(
            thread_id, conf["checkpoint_ns"], conf["checkpoint_id"], task_id, task_path, writes
        ):
            batch.write(row[1:], upsert)
        await self._submit(thread_id, batch)

    def _batch(self, thread_id: str) -> _Batch:
        """Where this call's rows go: the thread's queue inside a batched run, else its own."""
        if not batched_writes.get():
            return _Batch()
        return self._queues.setdefault(thread_id, _Queue()).batch

    async def _submit(self, thread_id: str, batch: _Batch) -> None:
        if not batched_writes.get():
            await self.flush(thread_id)  # keep the thread's writes in order
            await self._write(thread_id, batch)
            return
        queue = self._queues[thread_id]
        if queue.task is None or queue.task.done():
            queue.task = asyncio.create_task(self._drain(thread_id, queue))

    async def _write(self, thread_id: str, batch: _Batch) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(q.sql_bytes("put_checkpoints"), batch.params(thread_id))

    async def _drain(self, thread_id: str, queue: _Queue) -> None:
        """The thread's flusher: everything queued since the last round trip, in one go."""
        try:
            while queue.batch:
                batch, queue.batch = queue.batch, _Batch()
                await self._write(thread_id, batch)
        except BaseException as e:  # kept for the run's owner; see flush(consume=True)
            queue.error, queue.batch = e, _Batch()
        if queue.error is None and not queue.batch and self._queues.get(thread_id) is queue:
            del self._queues[thread_id]

    async def flush(self, thread_id: str, consume: bool = False) -> None:
        """Wait until the thread's queued writes are in Postgres; raise if writing failed
        (`consume`: and forget the failure, the caller handles it)."""
        queue = self._queues.get(str(thread_id))
        if queue is None:
            return
        while queue.task is not None and not queue.task.done():
            await asyncio.shield(queue.task)
        if queue.error is not None:
            error = queue.error
            if consume:
                queue.error = None
                if self._queues.get(str(thread_id)) is queue and not queue.batch:
                    del self._queues[str(thread_id)]
            raise error

    def discard(self, thread_id: str) -> None:
        """Forget the thread's queued writes that are not on their way yet: the attempt that
        made them lost its run, and another attempt owns the thread now."""
        queue = self._queues.pop(str(thread_id), None)
        if queue is not None:
            queue.batch = _Batch()

    async def _flush_all(self) -> None:
        for thread_id in list(self._queues):
            await self.flush(thread_id)

    # reads and deletes wait for the thread's queue -------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        await self.flush(config["configurable"]["thread_id"])
        return await super().aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        thread_id = (config or {}).get("configurable", {}).get("thread_id")
        await (self.flush(thread_id) if thread_id is not None else self._flush_all())
        async for item in super().alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        await self.flush(thread_id)
        await super().adelete_thread(thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for thread_id in thread_ids:
            await self.flush(thread_id)
        await super().aprune(thread_ids, strategy=strategy)

    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        ids = {"thread_id": value["thread_id"], "checkpoint_ns": value["checkpoint_ns"]}
        parent = value["parent_checkpoint_id"]
        checkpoint = value["checkpoint"]
        return CheckpointTuple(
            {"configurable": {**ids, "checkpoint_id": value["checkpoint_id"]}},
            cast(
                Checkpoint,
                {
                    **checkpoint,
                    "channel_values": {
                        **(checkpoint.get("channel_values") or {}),
                        **self._load_blobs(value["channel_values"]),
                    },
                },
            ),
            value["metadata"],
            {"configurable": {**ids, "checkpoint_id": parent}} if parent else None,
            self._load_writes(value["pending_writes"]),
        )
