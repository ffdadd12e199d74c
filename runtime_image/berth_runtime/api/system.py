"""Health and server information."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import psycopg
import psycopg_pool
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from berth_runtime.api.common import json_response, rt_of
from berth_runtime.db import q
from berth_runtime.metrics import Snapshot, render_prometheus

router = APIRouter(tags=["system"])

# Seconds a scrape waits for a Postgres connection before it reports `berth_postgres_up 0`.
METRICS_DB_TIMEOUT = 5.0


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


@router.get("/ok")
async def ok(request: Request, check_db: int = 0) -> Response:
    if check_db:
        rt = rt_of(request)
        try:
            async with rt.pool.connection() as conn:
                await conn.execute("SELECT 1")
        except Exception as e:
            raise HTTPException(500, f"database unreachable: {type(e).__name__}") from None
    return json_response({"ok": True})


@router.get("/metrics")
async def metrics(request: Request, format: str = "prometheus") -> Response:
    if format not in ("prometheus", "json"):
        raise HTTPException(422, "format must be 'prometheus' or 'json'")
    rt = rt_of(request)
    snap = Snapshot()
    try:
        async with rt.pool.connection(timeout=METRICS_DB_TIMEOUT) as conn:
            for row in await q.fetchall(conn, "active_run_counts"):
                setattr(snap, str(row["status"]), int(row["n"]))
            oldest = await q.fetchone(conn, "oldest_pending_age")
            snap.oldest_pending_seconds = float(oldest["seconds"]) if oldest else 0.0
    except (psycopg.Error, psycopg_pool.PoolTimeout, OSError):
        # Still an answer: `berth_postgres_up 0` is what the PostgresUnreachable alert reads.
        snap.postgres_up = False
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        snap.worker_slots = worker.slots
        snap.worker_active = len(worker.active)
        snap.finished = dict(worker.finished)
        snap.stats = worker.stats
    if format == "json":
        return json_response(snap.as_json())
    return Response(render_prometheus(snap), media_type=CONTENT_TYPE_LATEST)


@router.get("/info")
async def info(request: Request) -> Response:
    rt = rt_of(request)
    return json_response(
        {
            "version": _version("berth"),
            "langgraph_py_version": _version("langgraph"),
            "role": rt.role,
            "flags": {"assistants": True, "crons": False, "langsmith": False},
            "graphs": rt.graphs.ids(),
            "redis": rt.bus.enabled,
        }
    )
