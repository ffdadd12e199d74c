"""POST the finished run to its webhook: best effort, a few tries, never blocks the worker."""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

from berth_runtime.context import Runtime
from berth_runtime.db import q
from berth_runtime.serde import dumps_bytes
from berth_runtime.webhooks.policy import check_resolved, check_url

log = logging.getLogger(__name__)

ATTEMPTS = 3


def payload(run: dict[str, Any], result: Any) -> dict[str, Any]:
    """The run as the API shows it, plus its outcome and timestamps."""
    values = dict(result) if isinstance(result, dict) else result
    error = values.pop("__error__", None) if isinstance(values, dict) else None
    body = {
        k: run.get(k)
        for k in (
            "run_id",
            "thread_id",
            "assistant_id",
            "created_at",
            "updated_at",
            "status",
            "metadata",
            "kwargs",
            "multitask_strategy",
        )
    }
    body.update(
        run_ended_at=run.get("ended_at"),
        webhook_sent_at=datetime.datetime.now(datetime.UTC).isoformat(),
        values=values,
        error=error,
    )
    return body


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def send_webhook(rt: Runtime, run_id: str) -> None:
    async with rt.pool.connection() as conn:
        row = await q.fetchone(conn, "get_run_by_id", run_id=run_id)
    if row is None or not row["kwargs"].get("webhook"):
        return
    url = str(row["kwargs"]["webhook"])
    policy = rt.config.webhooks
    reason = check_url(url, policy)
    if reason is None:
        parts = urlsplit(url)
        try:
            addresses = await _resolve(parts.hostname or "", parts.port or 443)
            reason = check_resolved(addresses, policy)
        except OSError as e:
            reason = f"cannot resolve webhook host: {e}"
    if reason is not None:
        log.warning("run %s: webhook not sent: %s", run_id, reason)
        return
    body = dumps_bytes(payload(dict(row), row["result"]))
    headers = {"content-type": "application/json", **dict(policy.headers)}
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        for attempt in range(ATTEMPTS):
            try:
                r = await client.post(url, content=body, headers=headers)
                if r.status_code < 500:
                    log.info("run %s: webhook answered %s", run_id, r.status_code)
                    return
            except httpx.HTTPError as e:
                log.info("run %s: webhook attempt %s failed: %r", run_id, attempt + 1, e)
            await asyncio.sleep(0.5 * 2**attempt)
    log.warning("run %s: webhook gave up after %s attempts", run_id, ATTEMPTS)
