"""Stateless runs are owner-checked like thread runs: another user can neither read, join,
cancel nor list them (the owner is stamped into the run when it is created)."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.integration.runtime.conftest import REPO, launch
from tests.support.servers import Server

pytestmark = pytest.mark.integration

OWNERS_CONFIG = REPO / "tests" / "integration" / "graphs" / "with_auth" / "owners.json"


async def _not_found(call: Awaitable[Any]) -> None:
    with pytest.raises(httpx.HTTPStatusError) as err:
        await call
    assert err.value.response.status_code == 404


async def test_user_b_cannot_touch_user_a_stateless_runs(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    server = launch("serve", database_uri, redis.uri, tmp_path, config=OWNERS_CONFIG)
    alice = get_client(url=server.url, headers={"Authorization": "Bearer token-alice"})
    bob = get_client(url=server.url, headers={"Authorization": "Bearer token-bob"})
    try:
        # One stateless run still pending (scheduled an hour out), one finished.
        pending = await alice.runs.create(None, "factory", input={"who": "a"}, after_seconds=3600)
        done = await alice.runs.create(None, "factory", input={"who": "a"}, on_completion="keep")
        assert (await alice.runs.join(done["thread_id"], done["run_id"]))["who"] == "a"

        for run in (pending, done):
            tid, rid = run["thread_id"], run["run_id"]
            for call in (
                bob.runs.get(tid, rid),
                bob.runs.join(tid, rid),
                bob.runs.cancel(tid, rid),
                bob.runs.list(tid),
            ):
                await _not_found(call)
            with pytest.raises(httpx.HTTPStatusError) as err:
                async for _ in bob.runs.join_stream(tid, rid):
                    pass
            assert err.value.response.status_code == 404
            # alice still sees her own run, in the thread's list too
            assert (await alice.runs.get(tid, rid))["run_id"] == rid
            assert [r["run_id"] for r in await alice.runs.list(tid)] == [rid]

        # bulk cancel: by id it is "not found"; by status it leaves alice's run alone
        await _not_found(bob.runs.cancel_many(run_ids=[pending["run_id"]]))
        await bob.runs.cancel_many(status="all")
        got = await alice.runs.get(pending["thread_id"], pending["run_id"])
        assert got["status"] == "pending"

        # and alice can cancel it herself
        await alice.runs.cancel(pending["thread_id"], pending["run_id"])
        got = await alice.runs.get(pending["thread_id"], pending["run_id"])
        assert got["status"] == "interrupted"
    finally:
        await alice.aclose()
        await bob.aclose()
        server.terminate()
