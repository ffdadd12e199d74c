"""Custom authentication with a langgraph_sdk.Auth handler, driven by the real SDK."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

from tests.integration.runtime.conftest import REPO, launch
from tests.support.servers import Server

pytestmark = pytest.mark.integration

AUTH_CONFIG = REPO / "tests" / "integration" / "graphs" / "with_auth" / "langgraph.json"


async def test_authenticate_handler_guards_the_api(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    server = launch("serve", database_uri, redis.uri, tmp_path, config=AUTH_CONFIG)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/ok")).status_code == 200  # probes need no token
            r = await http.post("/threads", json={})
            assert r.status_code == 401 and r.json() == {"detail": "missing bearer token"}
            assert r.headers["www-authenticate"] == "Bearer"
            r = await http.post("/threads", json={}, headers={"Authorization": "Bearer stolen"})
            assert r.status_code == 403 and r.json()["detail"] == "unknown token"

        client = get_client(url=server.url, headers={"Authorization": "Bearer token-alice"})
        try:
            out = await client.runs.wait(None, "factory", input={})
            assert out["greeting"] == "hello from langgraph.json"
            # A factory taking the ServerRuntime is built for the caller of the run.
            out = await client.runs.wait(None, "whoami", input={})
            assert out == {"user": "alice", "permissions": []}
        finally:
            await client.aclose()
    finally:
        server.terminate()


OWNERS_CONFIG = REPO / "tests" / "integration" / "graphs" / "with_auth" / "owners.json"


async def test_authorization_handlers_isolate_users(
    database_uri: str, redis: Server, tmp_path: Path
) -> None:
    server = launch("serve", database_uri, redis.uri, tmp_path, config=OWNERS_CONFIG)
    alice = get_client(url=server.url, headers={"Authorization": "Bearer token-alice"})
    bob = get_client(url=server.url, headers={"Authorization": "Bearer token-bob"})
    try:
        t = await alice.threads.create(metadata={"topic": "secret"})
        assert t["metadata"] == {"topic": "secret", "owner": "alice"}
        out = await alice.runs.wait(t["thread_id"], "hitl", input={"topic": "a"})
        assert out["log"] == ["draft:a"]
        [run] = await alice.runs.list(t["thread_id"])

        # bob sees nothing of alice's: not the thread, its runs, state, or search results
        for call in (
            bob.threads.get(t["thread_id"]),
            bob.threads.get_state(t["thread_id"]),
            bob.runs.list(t["thread_id"]),
            bob.runs.get(t["thread_id"], run["run_id"]),
            bob.runs.create(t["thread_id"], "hitl", command={"resume": "hijack"}),
            bob.threads.update(t["thread_id"], metadata={"owner": "bob"}),
            bob.threads.delete(t["thread_id"]),
        ):
            with pytest.raises(NotFoundError):
                await call
        assert await bob.threads.search() == []
        assert await bob.threads.count() == 0
        mine = await bob.threads.create()
        assert [x["thread_id"] for x in await bob.threads.search()] == [mine["thread_id"]]
        assert [x["thread_id"] for x in await alice.threads.search()] == [t["thread_id"]]

        cron = await alice.crons.create_for_thread(t["thread_id"], "factory", schedule="0 9 * * *")
        assert cron["metadata"]["owner"] == "alice"
        assert await bob.crons.search() == []
        with pytest.raises(NotFoundError):
            await bob.crons.delete(cron["cron_id"])

        # store handlers scope every namespace under the user
        await alice.store.put_item(["prefs"], "theme", {"v": "dark"})
        assert await bob.store.get_item(["prefs"], "theme") is None
        got = await alice.store.get_item(["prefs"], "theme")
        assert got is not None and got["namespace"] == ["alice", "prefs"]

        # a handler answering False forbids the action
        a = await bob.assistants.create("factory", name="mine")
        with pytest.raises(httpx.HTTPStatusError) as denied:
            await bob.assistants.delete(a["assistant_id"])
        assert denied.value.response.status_code == 403
        assert [x["assistant_id"] for x in await bob.assistants.search()] == [a["assistant_id"]]
        with pytest.raises(NotFoundError):
            await alice.assistants.get(a["assistant_id"])
    finally:
        await alice.aclose()
        await bob.aclose()
        server.terminate()
