"""Assistants: versioned configurations of a graph. One default assistant per graph."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
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
from berth_runtime.assistants import default_assistant_id, resolve_assistant
from berth_runtime.auth.authorize import authorize, visible
from berth_runtime.auth.filters import containment
from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.models import (
    AssistantCount,
    AssistantCreate,
    AssistantPatch,
    AssistantSearch,
    AssistantSetLatest,
    AssistantVersionsSearch,
)
from berth_runtime.queue import settle

router = APIRouter(tags=["assistants"])


async def ensure_default_assistants(rt: Runtime) -> None:
    """Create the default assistant of every configured graph (idempotent across replicas)."""
    async with rt.pool.connection() as conn, conn.transaction():
        for graph_id in rt.graphs.ids():
            fields = {
                "assistant_id": default_assistant_id(graph_id),
                "graph_id": graph_id,
                "name": graph_id,
                "description": None,
                "config": {},
                "context": {},
                "metadata": {"created_by": "system"},
            }
            await q.execute(conn, "insert_assistant", **fields)
            await q.execute(conn, "insert_assistant_version", version=1, **fields)


def _check_graph(rt: Runtime, graph_id: str) -> None:
    if graph_id not in rt.graphs:
        raise HTTPException(404, f"Graph '{graph_id}' not found; known graphs: {rt.graphs.ids()}")


def _check_config_context(config: dict[str, Any] | None, context: dict[str, Any] | None) -> None:
    if config and config.get("configurable") and context:
        raise HTTPException(400, "Cannot specify both configurable and context. Use context only.")


def _mirror(
    config: dict[str, Any] | None, context: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Keep an assistant's `configurable` and `context` the same, as the Agent Server does: a
    graph with a context schema then sees settings given the pre-0.6 way, and vice versa."""
    if config is not None and config.get("configurable") and not context:
        return config, dict(config["configurable"])
    if context:
        return {**(config or {}), "configurable": dict(context)}, context
    return config, context


@router.post("/assistants")
async def create_assistant(body: AssistantCreate, request: Request) -> Response:
    rt = rt_of(request)
    _check_config_context(body.config, body.context)
    _check_graph(rt, body.graph_id)
    config, context = _mirror(body.config, body.context)
    fields = {
        "assistant_id": body.assistant_id or uuid.uuid4(),
        "graph_id": body.graph_id,
        "name": body.name or "Untitled",
        "description": body.description,
        "config": config,
        "context": context,
        "metadata": body.metadata,
    }
    value = {**fields, "if_exists": body.if_exists}
    auth_filter = await authorize(request, "assistants", "create", value)
    fields["metadata"] = value["metadata"]
    async with rt.pool.connection() as conn, conn.transaction():
        row = await q.fetchone(conn, "insert_assistant", **fields)
        if row is None:
            if body.if_exists == "do_nothing":
                row = await q.fetchone(conn, "get_assistant", assistant_id=fields["assistant_id"])
                if row is None or not visible(row["metadata"], auth_filter):
                    raise HTTPException(409, f"Assistant {fields['assistant_id']} already exists")
            else:
                raise HTTPException(409, f"Assistant {fields['assistant_id']} already exists")
        else:
            await q.execute(conn, "insert_assistant_version", version=1, **fields)
    return json_response(row_json(row))


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, request: Request) -> Response:
    return json_response(row_json(await assistant_for(request, assistant_id, "read")))


@router.patch("/assistants/{assistant_id}")
async def patch_assistant(assistant_id: str, body: AssistantPatch, request: Request) -> Response:
    rt = rt_of(request)
    _check_config_context(body.config, body.context)
    current = await assistant_for(request, assistant_id, "update")
    if body.graph_id is not None:
        _check_graph(rt, body.graph_id)
    config, context = _mirror(body.config, body.context)
    aid = current["assistant_id"]
    async with rt.pool.connection() as conn, conn.transaction():
        locked = await q.fetchone(conn, "lock_assistant", assistant_id=aid)
        if locked is None:
            raise HTTPException(404, f"Assistant '{assistant_id}' not found")
        top = await q.fetchone(conn, "max_assistant_version", assistant_id=aid)
        version = int(top["v"] if top else 0) + 1
        fields = {
            "assistant_id": aid,
            "graph_id": body.graph_id or locked["graph_id"],
            "name": body.name if body.name is not None else locked["name"],
            "description": body.description
            if body.description is not None
            else locked["description"],
            "config": config if config is not None else locked["config"],
            "context": context if context is not None else locked["context"],
            "metadata": {**locked["metadata"], **(body.metadata or {})},
        }
        await q.execute(conn, "insert_assistant_version", version=version, **fields)
        row = await q.fetchone(conn, "update_assistant", version=version, **fields)
    return json_response(row_json(row))


@router.delete("/assistants/{assistant_id}")
async def delete_assistant(
    assistant_id: str, request: Request, delete_threads: bool = False
) -> Response:
    """`delete_threads=true` also deletes the idle threads this assistant last ran on."""
    rt = rt_of(request)
    current = await assistant_for(request, assistant_id, "delete")
    async with rt.pool.connection() as conn:
        await q.execute(conn, "delete_assistant", assistant_id=current["assistant_id"])
        threads = (
            await q.fetchall(
                conn, "threads_of_assistant", assistant_id=str(current["assistant_id"])
            )
            if delete_threads
            else []
        )
    for row in threads:
        await settle.delete_thread_everywhere(rt, str(row["thread_id"]))
    return json_response(None)


def _filters(
    body: AssistantSearch | AssistantCount, auth_filter: dict[str, Any]
) -> tuple[sql.Composable, dict[str, Any]]:
    clauses: list[sql.Composable] = [
        sql.SQL("metadata @> %(metadata)s"),
        sql.SQL("metadata @> %(auth_filter)s"),
    ]
    params: dict[str, Any] = {
        "metadata": Jsonb(body.metadata),
        "auth_filter": Jsonb(containment(auth_filter)),
    }
    if body.graph_id:
        clauses.append(sql.SQL("graph_id = %(graph_id)s"))
        params["graph_id"] = body.graph_id
    if body.name:
        clauses.append(sql.SQL("name ILIKE %(name)s"))
        params["name"] = f"%{body.name}%"
    return sql.SQL(" AND ").join(clauses), params


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, request: Request) -> Response:
    rt = rt_of(request)
    auth_filter = await _search_filter(request, body)
    where, params = _filters(body, auth_filter)
    return await search_page(
        rt,
        "assistant",
        where,
        params,
        order=order_by(body.sort_by or "created_at", body.sort_order),
        limit=body.limit,
        offset=body.offset,
        select=body.select,
        to_json=row_json,
    )


async def _search_filter(
    request: Request, body: AssistantSearch | AssistantCount
) -> dict[str, Any]:
    value: dict[str, Any] = {"metadata": body.metadata, "graph_id": body.graph_id}
    filters = await authorize(request, "assistants", "search", value)
    body.metadata = value["metadata"]
    return filters


async def assistant_for(request: Request, assistant_id: str, action: str) -> dict[str, Any]:
    """The assistant, or 404 (also when the auth handlers' filter hides it)."""
    assistant = await resolve_assistant(rt_of(request), assistant_id)
    return await _visible_assistant(request, assistant, assistant_id, action)


async def assistant_to_use(request: Request, assistant_id: str) -> dict[str, Any]:
    """The assistant a run, a cron or a cron search names: one the caller may read (the
    `assistants` `read` handler's filter), or a graph's default assistant, which belongs to the
    deployment and which every user may run; else 404, the answer for an id that does not exist
    (found by the tenant isolation test: any user could run or schedule another's assistant)."""
    assistant = await resolve_assistant(rt_of(request), assistant_id)
    no_auth = getattr(request.app.state, "auth", None) is None
    if no_auth or assistant["assistant_id"] == default_assistant_id(assistant["graph_id"]):
        return assistant
    return await _visible_assistant(request, assistant, assistant_id, "read")


async def _visible_assistant(
    request: Request, assistant: dict[str, Any], assistant_id: str, action: str
) -> dict[str, Any]:
    value = {
        "assistant_id": assistant["assistant_id"],
        "graph_id": assistant["graph_id"],
        "metadata": dict(assistant["metadata"]),
    }
    if not visible(assistant["metadata"], await authorize(request, "assistants", action, value)):
        raise HTTPException(404, f"Assistant '{assistant_id}' not found")
    return assistant


@router.post("/assistants/count")
async def count_assistants(body: AssistantCount, request: Request) -> Response:
    auth_filter = await _search_filter(request, body)
    where, params = _filters(body, auth_filter)
    return json_response(await count_rows(rt_of(request), "assistant", where, params))


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(
    assistant_id: str, request: Request, xray: bool | int = False
) -> Response:
    rt = rt_of(request)
    assistant = await assistant_for(request, assistant_id, "read")
    graph = await rt.graphs.get(assistant["graph_id"], assistant["config"], "assistants.read")
    drawable = await graph.aget_graph(xray=xray)
    return json_response(drawable.to_json())


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, request: Request) -> Response:
    rt = rt_of(request)
    assistant = await assistant_for(request, assistant_id, "read")
    graph = await rt.graphs.get(assistant["graph_id"], assistant["config"], "assistants.read")

    def safe(fn: Any) -> Any:
        try:
            return fn()
        except Exception:
            return None

    return json_response(
        {
            "graph_id": assistant["graph_id"],
            "input_schema": safe(graph.get_input_jsonschema),
            "output_schema": safe(graph.get_output_jsonschema),
            "state_schema": safe(lambda: graph.get_output_jsonschema()),
            "config_schema": safe(graph.get_config_jsonschema),
            "context_schema": safe(graph.get_context_jsonschema),
        }
    )


@router.get("/assistants/{assistant_id}/subgraphs")
async def get_assistant_subgraphs(
    assistant_id: str, request: Request, recurse: bool = False
) -> Response:
    return await _subgraphs(request, assistant_id, None, recurse)


@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_assistant_subgraphs_in(
    assistant_id: str, namespace: str, request: Request, recurse: bool = False
) -> Response:
    return await _subgraphs(request, assistant_id, namespace, recurse)


async def _subgraphs(
    request: Request, assistant_id: str, namespace: str | None, recurse: bool
) -> Response:
    rt = rt_of(request)
    assistant = await assistant_for(request, assistant_id, "read")
    graph = await rt.graphs.get(assistant["graph_id"], assistant["config"], "assistants.read")
    out: dict[str, Any] = {}
    async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recurse):
        out[ns] = {
            "input_schema": sub.get_input_jsonschema(),
            "output_schema": sub.get_output_jsonschema(),
        }
    return json_response(out)


@router.post("/assistants/{assistant_id}/versions")
async def list_versions(
    assistant_id: str, body: AssistantVersionsSearch, request: Request
) -> Response:
    rt = rt_of(request)
    assistant = await assistant_for(request, assistant_id, "read")
    async with rt.pool.connection() as conn:
        rows = await q.fetchall(
            conn,
            "list_assistant_versions",
            assistant_id=assistant["assistant_id"],
            metadata=body.metadata,
            limit=body.limit,
            offset=body.offset,
        )
    return json_response([dict(r) for r in rows])


@router.post("/assistants/{assistant_id}/latest")
async def set_latest(
    assistant_id: str,
    request: Request,
    version: int | None = None,
    body: AssistantSetLatest | None = None,
) -> Response:
    rt = rt_of(request)
    assistant = await assistant_for(request, assistant_id, "update")
    wanted = version if version is not None else (body.version if body else None)
    if wanted is None:
        raise HTTPException(422, "version is required")
    async with rt.pool.connection() as conn, conn.transaction():
        v = await q.fetchone(
            conn,
            "get_assistant_version",
            assistant_id=assistant["assistant_id"],
            version=wanted,
        )
        if v is None:
            raise HTTPException(404, f"Assistant {assistant_id} has no version {wanted}")
        row = await q.fetchone(
            conn,
            "update_assistant",
            assistant_id=assistant["assistant_id"],
            graph_id=v["graph_id"],
            name=v["name"],
            description=v["description"],
            config=v["config"],
            context=v["context"],
            metadata=v["metadata"],
            version=wanted,
        )
    return json_response(row_json(row))
