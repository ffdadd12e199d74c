"""`GET /threads/{tid}/storage`: the bytes a thread occupies in the Postgres checkpointer.

Sizes are as stored (`pg_column_size` of the checkpoint rows, `octet_length` of blobs), so an
operator can see which threads and which channels grow, e.g. a long chat history.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from berth_runtime.api.common import json_response, rt_of
from berth_runtime.api.threads import get_thread_row

router = APIRouter(tags=["threads"])

CHECKPOINTS = """
SELECT count(*) AS n,
       coalesce(sum(pg_column_size(checkpoint) + pg_column_size(metadata)), 0) AS bytes
FROM checkpoints WHERE thread_id = %(tid)s
"""
CHANNELS = """
SELECT channel, count(*) AS n, coalesce(sum(octet_length(blob)), 0) AS bytes
FROM checkpoint_blobs WHERE thread_id = %(tid)s
GROUP BY channel ORDER BY channel
"""
WRITES = """
SELECT count(*) AS n, coalesce(sum(octet_length(blob)), 0) AS bytes
FROM checkpoint_writes WHERE thread_id = %(tid)s
"""


@router.get("/threads/{thread_id}/storage")
async def thread_storage(thread_id: str, request: Request) -> Response:
    rt = rt_of(request)
    row = await get_thread_row(rt, thread_id, request, "read")
    params = {"tid": str(row["thread_id"])}
    async with rt.pool.connection() as conn:
        cps: Any = await (await conn.execute(CHECKPOINTS, params)).fetchone()
        channels = await (await conn.execute(CHANNELS, params)).fetchall()
        writes: Any = await (await conn.execute(WRITES, params)).fetchone()
    by_channel = {
        str(c["channel"]): {"versions": int(c["n"]), "bytes": int(c["bytes"])} for c in channels
    }
    channel_bytes = sum(c["bytes"] for c in by_channel.values())
    sections: dict[str, dict[str, Any]] = {
        "checkpoints": {"count": int(cps["n"]), "bytes": int(cps["bytes"])},
        "channel_values": {
            "count": sum(c["versions"] for c in by_channel.values()),
            "bytes": channel_bytes,
            "channels": by_channel,
        },
        "pending_writes": {"count": int(writes["n"]), "bytes": int(writes["bytes"])},
    }
    total = sum(int(s["bytes"]) for s in sections.values())
    return json_response({"thread_id": str(row["thread_id"]), "total_bytes": total, **sections})
