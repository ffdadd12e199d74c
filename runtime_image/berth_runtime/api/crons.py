"""Crons: scheduled runs on a thread or stateless, with the Agent Server's routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from berth_runtime.api.assistants import assistant_to_use
from berth_runtime.api.common import count_rows, json_response, order_by, rt_of, search_page
from berth_runtime.api.threads import get_thread_row
from berth_runtime.assistants import parse_uuid
from berth_runtime.auth.authorize import authorize, visible
from berth_runtime.auth.filters import containment
from berth_runtime.crons.fire import payload_of, run_request
from berth_runtime.crons.schedule import ScheduleError, check_schedule
from berth_runtime.crons.scheduler import following
from berth_runtime.db import q
from berth_runtime.models import CronCount, CronCreate, CronPatch, CronSearch
from berth_runtime.webhooks.policy import check_url

router = APIRouter(tags=["crons"])


def cron_json(row: Any) -> dict[str, Any]:
    out = dict(row)
    out.pop("total", None)
    return out


def _check(schedule: str, timezone: str | None) -> None:
    try:
        check_schedule(schedule, timezone)
    except ScheduleError as e:
        raise HTTPException(422, str(e)) from None


def _check_fields(request: Request, body: CronCreate) -> None:
    """What is wrong with a new cron itself, answered before its assistant or thread is looked
    up, as the Agent Server orders it: a bad schedule or timezone, a webhook the policy
    refuses. (`configurable` with `context` is, there too, only checked after the lookup.)"""
    _check(body.schedule, body.timezone)
    _check_webhook(request, body.webhook)


def _check_webhook(request: Request, webhook: str | None) -> None:
    if webhook is not None:
        reason = check_url(webhook, rt_of(request).config.webhooks)
        if reason is not None:
            raise HTTPException(422, reason)


def _check_payload(cron: dict[str, Any]) -> None:
    """The stored payload must make a valid run request, or every fire would fail."""
    try:
        run_request(cron)
    except ValidationError as e:
        raise HTTPException(422, f"invalid run fields: {e.errors()[0]['msg']}") from None


async def _create(request: Request, body: CronCreate, thread_id: uuid.UUID | None) -> Response:
    rt = rt_of(request)
    _check_fields(request, body)
    assistant = await assistant_to_use(request, body.assistant_id)
    payload = payload_of(body.model_dump())
    payload["assistant_id"] = str(assistant["assistant_id"])
    cron: dict[str, Any] = {
        "cron_id": uuid.uuid4(),
        "assistant_id": assistant["assistant_id"],
        "thread_id": thread_id,
        "schedule": body.schedule,
        "timezone": body.timezone or "UTC",
        "end_time": body.end_time,
        "payload": payload,
        "metadata": body.metadata or {},
        "enabled": body.enabled,
        "on_run_completed": body.on_run_completed,
    }
    value = {
        "cron_id": cron["cron_id"],
        "thread_id": thread_id,
        "schedule": body.schedule,
        "end_time": body.end_time,
        "payload": payload,
        "metadata": cron["metadata"],
    }
    await authorize(request, "crons", "create", value)
    cron["metadata"] = value["metadata"]
    _check_payload(cron)
    cron["next_run_date"] = following(cron, datetime.now(UTC)) if body.enabled else None
    async with rt.pool.connection() as conn:
        row = await q.fetchone(conn, "insert_cron", **cron)
    return json_response(cron_json(row))


@router.post("/runs/crons")
async def create_cron(body: CronCreate, request: Request) -> Response:
    return await _create(request, body, None)


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(thread_id: str, body: CronCreate, request: Request) -> Response:
    _check_fields(request, body)
    thread = await get_thread_row(rt_of(request), thread_id, request, "read")
    return await _create(request, body, thread["thread_id"])


def _not_owned(cron: dict[str, Any]) -> None:
    """A cron an AgentCron owns changes only through the AgentCron (it would be rewritten)."""
    if cron.get("source"):
        namespace, _, name = str(cron["source"]).partition("/")
        raise HTTPException(
            409,
            f"Cron '{cron['cron_id']}' is managed by AgentCron {name.partition('/')[2]!r} in "
            f"namespace {namespace!r}: change or delete the AgentCron instead",
        )


async def _get(request: Request, cron_id: str, action: str) -> dict[str, Any]:
    cid = parse_uuid(cron_id, "cron_id")
    async with rt_of(request).pool.connection() as conn:
        row = await q.fetchone(conn, "get_cron", cron_id=cid)
    if row is not None:
        value = {"cron_id": cid, "metadata": dict(row["metadata"])}
        filters = await authorize(request, "crons", action, value)
    if row is None or not visible(row["metadata"], filters):
        raise HTTPException(404, f"Cron '{cron_id}' not found")
    return dict(row)


@router.get("/runs/crons/{cron_id}")
async def get_cron(cron_id: str, request: Request) -> Response:
    return json_response(cron_json(await _get(request, cron_id, "read")))


@router.patch("/runs/crons/{cron_id}")
async def patch_cron(cron_id: str, body: CronPatch, request: Request) -> Response:
    rt = rt_of(request)
    _check_webhook(request, body.webhook)  # before the lookup; the schedule after it
    cron = await _get(request, cron_id, "update")
    _not_owned(cron)
    fields = body.model_dump(exclude_unset=True)
    for key in ("schedule", "timezone", "enabled", "on_run_completed", "metadata"):
        if fields.get(key) is not None:
            cron[key] = fields[key]
    if "end_time" in fields:
        cron["end_time"] = fields["end_time"]
    cron["payload"] = {**cron["payload"], **payload_of(fields)}
    _check(cron["schedule"], cron["timezone"])
    _check_payload(cron)
    cron["next_run_date"] = following(cron, datetime.now(UTC)) if cron["enabled"] else None
    async with rt.pool.connection() as conn:
        row = await q.fetchone(
            conn,
            "update_cron",
            **{
                k: cron[k]
                for k in (
                    "cron_id",
                    "schedule",
                    "timezone",
                    "end_time",
                    "payload",
                    "metadata",
                    "enabled",
                    "on_run_completed",
                    "next_run_date",
                )
            },
        )
    return json_response(cron_json(row))


@router.delete("/runs/crons/{cron_id}")
async def delete_cron(cron_id: str, request: Request) -> Response:
    rt = rt_of(request)
    cron = await _get(request, cron_id, "delete")
    _not_owned(cron)
    async with rt.pool.connection() as conn:
        await q.execute(conn, "delete_cron", cron_id=cron["cron_id"])
    return json_response(None)


async def _filters(
    request: Request, body: CronSearch | CronCount
) -> tuple[sql.Composable, dict[str, Any]]:
    value: dict[str, Any] = {"metadata": body.metadata, "thread_id": body.thread_id}
    auth_filter = await authorize(request, "crons", "search", value)
    clauses: list[sql.Composable] = [
        sql.SQL("metadata @> %(metadata)s"),
        sql.SQL("metadata @> %(auth_filter)s"),
    ]
    params: dict[str, Any] = {
        "metadata": Jsonb(value["metadata"]),
        "auth_filter": Jsonb(containment(auth_filter)),
    }
    if body.assistant_id:
        assistant = await assistant_to_use(request, body.assistant_id)
        clauses.append(sql.SQL("assistant_id = %(assistant_id)s"))
        params["assistant_id"] = assistant["assistant_id"]
    if body.thread_id:
        clauses.append(sql.SQL("thread_id = %(thread_id)s"))
        params["thread_id"] = body.thread_id
    if isinstance(body, CronSearch) and body.enabled is not None:
        clauses.append(sql.SQL("enabled = %(enabled)s"))
        params["enabled"] = body.enabled
    return sql.SQL(" AND ").join(clauses), params


@router.post("/runs/crons/search")
async def search_crons(body: CronSearch, request: Request) -> Response:
    rt = rt_of(request)
    where, params = await _filters(request, body)
    return await search_page(
        rt,
        "cron",
        where,
        params,
        order=order_by(body.sort_by, body.sort_order, nulls_last=True),
        limit=body.limit,
        offset=body.offset,
        select=body.select,
        to_json=cron_json,
    )


@router.post("/runs/crons/count")
async def count_crons(body: CronCount, request: Request) -> Response:
    rt = rt_of(request)
    where, params = await _filters(request, body)
    return json_response(await count_rows(rt, "cron", where, params))
