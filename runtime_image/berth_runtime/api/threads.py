"""Threads: conversation state (checkpoints), status, copy, state reads and updates, history."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from langgraph.errors import EmptyInputError, InvalidUpdateError
from psycopg import sql
from psycopg.types.json import Jsonb

from berth_runtime.api.common import (
    count_rows,
    json_response,
    order_by,
    row_json,
    rt_of,
    search_page,
)
from berth_runtime.assistants import parse_uuid
from berth_runtime.auth.authorize import authorize, visible
from berth_runtime.auth.filters import containment
from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.executor.state import empty_state, snapshot_to_json
from berth_runtime.graphs.loader import GraphNotFound
from berth_runtime.models import (
    CheckpointConfig,
    ThreadCount,
    ThreadCreate,
    ThreadHistoryRequest,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
    ThreadStateCheckpointRequest,
    ThreadStateUpdate,
)
from berth_runtime.queue import settle

router = APIRouter(tags=["threads"])


def thread_json(row: Any) -> dict[str, Any]:
    out = row_json(row)
    out.pop("error", None)
    return out


async def get_thread_row(
    rt: Runtime, thread_id: str, request: Request | None = None, action: str = "read"
) -> dict[str, Any]:
    """The thread, or 404; with a request, also 404 when the auth handlers' filter hides it."""
    tid = parse_uuid(thread_id, "thread_id")
    async with rt.pool.connection() as conn:
        row = await q.fetchone(conn, "get_thread", thread_id=tid)
    if row is None or row["temporary"]:
        raise HTTPException(404, f"Thread '{thread_id}' not found")
    if request is not None:
        value = {"thread_id": row["thread_id"], "metadata": dict(row["metadata"])}
        if not visible(row["metadata"], await authorize(request, "threads", action, value)):
            raise HTTPException(404, f"Thread '{thread_id}' not found")
    return dict(row)


@router.post("/threads")
async def create_thread(body: ThreadCreate, request: Request) -> Response:
    rt = rt_of(request)
    tid = body.thread_id or uuid.uuid4()
    metadata = dict(body.metadata)
    if body.graph_id:
        if body.graph_id not in rt.graphs:
            raise HTTPException(404, f"Graph '{body.graph_id}' not found")
        metadata.setdefault("graph_id", body.graph_id)
    value: dict[str, Any] = {"thread_id": tid, "metadata": metadata, "if_exists": body.if_exists}
    filters = await authorize(request, "threads", "create", value)
    metadata = value["metadata"]
    async with rt.pool.connection() as conn:
        row = await q.fetchone(
            conn,
            "insert_thread",
            thread_id=tid,
            metadata=metadata,
            config={},
            ttl=body.ttl.model_dump() if body.ttl else None,
            temporary=False,
        )
        if row is None:
            if body.if_exists == "do_nothing":
                row = await q.fetchone(conn, "get_thread", thread_id=tid)
                if row is None or not visible(row["metadata"], filters):
                    raise HTTPException(409, f"Thread {tid} already exists")
            else:
                raise HTTPException(409, f"Thread {tid} already exists")
    if body.supersteps:
        await _apply_supersteps(rt, str(tid), metadata.get("graph_id"), body.supersteps)
        async with rt.pool.connection() as conn:
            row = await q.fetchone(conn, "get_thread", thread_id=tid)
    return json_response(thread_json(row))


async def _apply_supersteps(
    rt: Runtime, thread_id: str, graph_id: str | None, supersteps: list[dict[str, Any]]
) -> None:
    if not graph_id:
        raise HTTPException(400, "supersteps need graph_id")
    graph = await rt.graphs.get(graph_id, {}, "threads.update")
    config: dict[str, Any] = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    for step in supersteps:
        for update in step.get("updates", []):
            config = await graph.aupdate_state(
                config, update.get("values"), as_node=update.get("as_node")
            )
    await _store_state(rt, thread_id, graph_id)


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, request: Request) -> Response:
    return json_response(thread_json(await get_thread_row(rt_of(request), thread_id, request)))


@router.patch("/threads/{thread_id}")
async def patch_thread(thread_id: str, body: ThreadPatch, request: Request) -> Response:
    rt = rt_of(request)
    current = await get_thread_row(rt, thread_id)
    tid = current["thread_id"]
    value: dict[str, Any] = {"thread_id": tid, "metadata": dict(body.metadata)}
    if not visible(current["metadata"], await authorize(request, "threads", "update", value)):
        raise HTTPException(404, f"Thread '{thread_id}' not found")
    async with rt.pool.connection() as conn:
        row = await q.fetchone(
            conn,
            "patch_thread",
            thread_id=tid,
            metadata=value["metadata"],
            ttl=body.ttl.model_dump() if body.ttl else None,
        )
    if row is None:
        raise HTTPException(404, f"Thread '{thread_id}' not found")
    return json_response(thread_json(row))


@router.delete("/threads/{thread_id}")
async def delete_thread(thread_id: str, request: Request) -> Response:
    rt = rt_of(request)
    row = await get_thread_row(rt, thread_id, request, "delete")
    tid = str(row["thread_id"])
    async with rt.pool.connection() as conn, conn.transaction():
        runs = await q.fetchall(conn, "delete_thread_runs", thread_id=row["thread_id"])
        await q.execute(conn, "delete_thread_crons", thread_id=row["thread_id"])
        await q.execute(conn, "delete_thread", thread_id=row["thread_id"])
    for r in runs:
        if r["status"] == "running":
            await rt.bus.publish_cancel(str(r["run_id"]), "interrupt")
    await rt.checkpointer.adelete_thread(tid)
    return json_response(None)


def _thread_filters(
    body: ThreadSearch | ThreadCount, auth_filter: dict[str, Any]
) -> tuple[sql.Composable, dict[str, Any]]:
    clauses: list[sql.Composable] = [
        sql.SQL("NOT temporary"),
        sql.SQL("metadata @> %(metadata)s"),
        sql.SQL("metadata @> %(auth_filter)s"),
    ]
    params: dict[str, Any] = {
        "metadata": Jsonb(body.metadata),
        "auth_filter": Jsonb(containment(auth_filter)),
    }
    if body.values:
        clauses.append(sql.SQL('"values" @> %(values)s'))
        params["values"] = Jsonb(body.values)
    if body.status:
        clauses.append(sql.SQL("status = %(status)s"))
        params["status"] = body.status
    if isinstance(body, ThreadSearch) and body.ids:
        clauses.append(sql.SQL("thread_id = ANY(%(ids)s)"))
        params["ids"] = body.ids
    return sql.SQL(" AND ").join(clauses), params


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, request: Request) -> Response:
    rt = rt_of(request)
    auth_filter = await _search_filter(request, body)
    where, params = _thread_filters(body, auth_filter)
    return await search_page(
        rt,
        "thread",
        where,
        params,
        order=order_by(body.sort_by or "created_at", body.sort_order),
        limit=body.limit,
        offset=body.offset,
        select=body.select,
        to_json=thread_json,
    )


@router.post("/threads/count")
async def count_threads(body: ThreadCount, request: Request) -> Response:
    auth_filter = await _search_filter(request, body)
    where, params = _thread_filters(body, auth_filter)
    return json_response(await count_rows(rt_of(request), "thread", where, params))


async def _search_filter(request: Request, body: ThreadSearch | ThreadCount) -> dict[str, Any]:
    value: dict[str, Any] = {
        "metadata": body.metadata,
        "values": body.values,
        "status": body.status,
    }
    if isinstance(body, ThreadSearch):
        value.update(limit=body.limit, offset=body.offset)
    filters = await authorize(request, "threads", "search", value)
    body.metadata = value["metadata"]
    return filters


@router.post("/threads/prune")
async def prune_threads(body: ThreadPrune, request: Request) -> Response:
    """`delete` removes idle threads entirely; `keep_latest` keeps only their latest checkpoint."""
    rt = rt_of(request)
    pruned = 0
    for tid in body.thread_ids:
        async with rt.pool.connection() as conn:
            row = await q.fetchone(conn, "get_thread", thread_id=tid)
        if row is None or row["temporary"] or row["status"] == "busy":
            continue
        value = {"thread_id": tid, "metadata": dict(row["metadata"])}
        if not visible(row["metadata"], await authorize(request, "threads", "delete", value)):
            continue
        if body.strategy == "delete":
            await settle.delete_thread_everywhere(rt, str(tid))
        else:
            await rt.checkpointer.aprune([str(tid)], strategy="keep_latest")
        pruned += 1
    return json_response({"pruned_count": pruned})


@router.post("/threads/{thread_id}/copy")
async def copy_thread(thread_id: str, request: Request) -> Response:
    rt = rt_of(request)
    row = await get_thread_row(rt, thread_id, request, "read")
    new_id = uuid.uuid4()
    params = {"thread_id": str(row["thread_id"]), "new_thread_id": str(new_id)}
    async with rt.pool.connection() as conn, conn.transaction():
        new_row = await q.fetchone(
            conn, "copy_thread", thread_id=row["thread_id"], new_thread_id=new_id
        )
        await q.execute(conn, "copy_checkpoints", **params)
        await q.execute(conn, "copy_checkpoint_blobs", **params)
        await q.execute(conn, "copy_checkpoint_writes", **params)
    return json_response(thread_json(new_row))


# state ----------------------------------------------------------------------------------------


def _graph_of(row: dict[str, Any]) -> str | None:
    graph_id = (row.get("metadata") or {}).get("graph_id")
    return str(graph_id) if graph_id else None


def _checkpoint_config(
    thread_id: str, cp: CheckpointConfig | None, checkpoint_id: str | None
) -> dict[str, Any]:
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if cp is not None:
        for key in ("checkpoint_ns", "checkpoint_id", "checkpoint_map"):
            value = getattr(cp, key)
            if value is not None:
                conf[key] = value
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


async def _state(
    request: Request, thread_id: str, config: dict[str, Any], subgraphs: bool
) -> dict[str, Any]:
    rt = rt_of(request)
    row = await get_thread_row(rt, thread_id, request, "read")
    tid = str(row["thread_id"])
    config["configurable"]["thread_id"] = tid
    graph_id = _graph_of(row)
    if graph_id is None or graph_id not in rt.graphs:
        return empty_state(tid)
    checkpoint_id = config["configurable"].get("checkpoint_id")
    if checkpoint_id and await rt.checkpointer.aget_tuple(config) is None:
        raise HTTPException(404, f"Checkpoint {checkpoint_id} not found in thread {tid}")
    graph = await rt.graphs.get(graph_id, config)
    snap = await graph.aget_state(config, subgraphs=subgraphs)
    return snapshot_to_json(snap) if snap.config else empty_state(tid)


@router.get("/threads/{thread_id}/state")
async def get_state(thread_id: str, request: Request, subgraphs: bool = False) -> Response:
    config = _checkpoint_config(thread_id, None, None)
    return json_response(await _state(request, thread_id, config, subgraphs))


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    thread_id: str, checkpoint_id: str, request: Request, subgraphs: bool = False
) -> Response:
    config = _checkpoint_config(thread_id, None, checkpoint_id)
    return json_response(await _state(request, thread_id, config, subgraphs))


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(
    thread_id: str, body: ThreadStateCheckpointRequest, request: Request
) -> Response:
    config = _checkpoint_config(thread_id, body.checkpoint, None)
    return json_response(await _state(request, thread_id, config, body.subgraphs))


async def _store_state(rt: Runtime, thread_id: str, graph_id: str) -> None:
    graph = await rt.graphs.get(graph_id, {})
    snap = snapshot_to_json(await graph.aget_state(_checkpoint_config(thread_id, None, None)))
    async with rt.pool.connection() as conn, conn.transaction():
        await settle.set_thread_from_snapshot(conn, thread_id, snap, None, False)


@router.post("/threads/{thread_id}/state")
async def update_state(thread_id: str, body: ThreadStateUpdate, request: Request) -> Response:
    rt = rt_of(request)
    row = await get_thread_row(rt, thread_id, request, "update")
    tid = str(row["thread_id"])
    graph_id = _graph_of(row)
    if graph_id is None:
        raise HTTPException(
            400, f"Thread {tid} has no graph yet: run it once (or create it with graph_id)"
        )
    if row["status"] == "busy":
        raise HTTPException(409, f"Thread {tid} is busy: a run is pending or running")
    config = _checkpoint_config(tid, body.checkpoint, body.checkpoint_id)
    try:
        graph = await rt.graphs.get(graph_id, config, "threads.update")
    except GraphNotFound:
        raise HTTPException(404, f"Graph '{graph_id}' not found") from None
    try:
        new_config = await graph.aupdate_state(config, body.values, as_node=body.as_node)
    except (InvalidUpdateError, EmptyInputError, ValueError, KeyError, TypeError) as e:
        raise HTTPException(400, f"Cannot update state: {e}") from None
    await _store_state(rt, tid, graph_id)
    return json_response({"checkpoint": new_config["configurable"]})


async def _history(
    request: Request,
    thread_id: str,
    limit: int,
    before: CheckpointConfig | str | None,
    metadata: dict[str, Any] | None,
    checkpoint: CheckpointConfig | None,
) -> list[dict[str, Any]]:
    rt = rt_of(request)
    row = await get_thread_row(rt, thread_id, request, "read")
    tid = str(row["thread_id"])
    graph_id = _graph_of(row)
    if graph_id is None or graph_id not in rt.graphs:
        return []
    config = _checkpoint_config(tid, checkpoint, None)
    before_cfg: dict[str, Any] | None = None
    if isinstance(before, str):
        before_cfg = _checkpoint_config(tid, None, before)
    elif before is not None:
        before_cfg = _checkpoint_config(tid, before, None)
    graph = await rt.graphs.get(graph_id, config)
    out = []
    async for snap in graph.aget_state_history(
        config, limit=limit, before=before_cfg, filter=metadata or None
    ):
        out.append(snapshot_to_json(snap))
    return out


@router.get("/threads/{thread_id}/history")
async def get_history(
    thread_id: str, request: Request, limit: int = 10, before: str | None = None
) -> Response:
    if limit < 1:
        raise HTTPException(422, "limit must be >= 1")
    return json_response(await _history(request, thread_id, limit, before, None, None))


@router.post("/threads/{thread_id}/history")
async def post_history(thread_id: str, body: ThreadHistoryRequest, request: Request) -> Response:
    return json_response(
        await _history(request, thread_id, body.limit, body.before, body.metadata, body.checkpoint)
    )
