"""Store items and namespaces, backed by LangGraph's AsyncPostgresStore."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from berth_runtime.api.common import json_response, rt_of
from berth_runtime.auth.authorize import authorize
from berth_runtime.models import StoreDelete, StoreListNamespaces, StorePut, StoreSearch
from berth_runtime.store.embeddings import EmbeddingDimensionError

router = APIRouter(tags=["store"])


def _check_namespace(namespace: list[str]) -> tuple[str, ...]:
    for label in namespace:
        if not label or "." in label:
            raise HTTPException(
                422, f"Invalid namespace label {label!r}: labels must be non-empty, without '.'"
            )
    return tuple(namespace)


async def _authorized_namespace(
    request: Request, action: str, namespace: tuple[str, ...], **fields: Any
) -> tuple[str, ...]:
    """Store handlers scope data by rewriting the namespace (e.g. prefixing the user id)."""
    value: dict[str, Any] = {"namespace": namespace, **fields}
    await authorize(request, "store", action, value)
    return _check_namespace([str(label) for label in value["namespace"]])


def item_json(item: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "namespace": list(item.namespace),
        "key": item.key,
        "value": item.value,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }
    if getattr(item, "score", None) is not None:
        out["score"] = item.score
    return out


@router.put("/store/items")
async def put_item(body: StorePut, request: Request) -> Response:
    rt = rt_of(request)
    namespace = _check_namespace(body.namespace)
    if not namespace:
        raise HTTPException(422, "namespace must not be empty")
    namespace = await _authorized_namespace(
        request, "put", namespace, key=body.key, value=body.value, index=body.index
    )
    kwargs: dict[str, Any] = {}
    if body.index is not None:
        kwargs["index"] = body.index
    if body.ttl is not None:
        kwargs["ttl"] = body.ttl
    try:
        await rt.store.aput(namespace, body.key, body.value, **kwargs)
    except EmbeddingDimensionError as e:
        raise HTTPException(422, f"The item cannot be indexed: {e}") from None
    return Response(status_code=204)


@router.get("/store/items")
async def get_item(
    request: Request, key: str, namespace: str | None = None, refresh_ttl: bool | None = None
) -> Response:
    rt = rt_of(request)
    ns = _check_namespace(namespace.split(".")) if namespace else ()
    ns = await _authorized_namespace(request, "get", ns, key=key)
    item = await rt.store.aget(ns, key, refresh_ttl=refresh_ttl)
    return json_response(item_json(item) if item is not None else None)


@router.delete("/store/items")
async def delete_item(body: StoreDelete, request: Request) -> Response:
    rt = rt_of(request)
    ns = await _authorized_namespace(
        request, "delete", _check_namespace(body.namespace), key=body.key
    )
    await rt.store.adelete(ns, body.key)
    return Response(status_code=204)


@router.post("/store/items/search")
async def search_items(body: StoreSearch, request: Request) -> Response:
    rt = rt_of(request)
    prefix = await _authorized_namespace(
        request,
        "search",
        _check_namespace(body.namespace_prefix or []),
        filter=body.filter,
        limit=body.limit,
        offset=body.offset,
        query=body.query,
    )
    if body.query and not rt.config.store_index:
        raise HTTPException(
            400,
            "Semantic search (query) needs an embedding index: configure store.index "
            "(dims, embed, fields) in langgraph.json, or search without query",
        )
    try:
        items = await rt.store.asearch(
            prefix,
            query=body.query,
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
            refresh_ttl=body.refresh_ttl,
        )
    except EmbeddingDimensionError as e:
        raise HTTPException(422, f"The query cannot be embedded: {e}") from None
    return json_response({"items": [item_json(i) for i in items]})


@router.post("/store/namespaces")
async def list_namespaces(body: StoreListNamespaces, request: Request) -> Response:
    rt = rt_of(request)
    prefix = await _authorized_namespace(
        request,
        "list_namespaces",
        _check_namespace(body.prefix or []),
        suffix=body.suffix,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    namespaces = await rt.store.alist_namespaces(
        prefix=prefix or None,
        suffix=tuple(body.suffix) if body.suffix else None,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    return json_response({"namespaces": [list(ns) for ns in namespaces]})
