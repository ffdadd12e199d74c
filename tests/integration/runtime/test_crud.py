"""Assistants, threads and store over HTTP with the real langgraph-sdk client, bad inputs too."""

from __future__ import annotations

import uuid

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

pytestmark = pytest.mark.integration

NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


async def test_system_endpoints(http: httpx.AsyncClient) -> None:
    assert (await http.get("/ok")).json() == {"ok": True}
    assert (await http.get("/ok", params={"check_db": 1})).status_code == 200
    info = (await http.get("/info")).json()
    assert "agent" in info["graphs"] and info["redis"] is True
    prom = await http.get("/metrics")
    assert prom.status_code == 200 and "berth_runs_pending" in prom.text
    assert "berth_worker_slots 10.0" in prom.text
    stats = (await http.get("/metrics", params={"format": "json"})).json()
    assert stats["workers"]["slots"] == 10 and "n_pending" in stats["queue"]
    assert (await http.get("/metrics", params={"format": "xml"})).status_code == 422
    spec = (await http.get("/openapi.json")).json()
    assert "/threads/{thread_id}/runs/stream" in spec["paths"]


async def test_default_assistants_exist_per_graph(client: LangGraphClient) -> None:
    found = await client.assistants.search(graph_id="agent")
    default = [a for a in found if a["metadata"].get("created_by") == "system"]
    assert len(default) == 1
    assert default[0]["assistant_id"] == str(uuid.uuid5(NAMESPACE, "agent"))
    # a graph name works wherever an assistant id is expected
    by_name = await client.assistants.get("agent")
    assert by_name["assistant_id"] == default[0]["assistant_id"]
    assert await client.assistants.count(graph_id="agent") >= 1


async def test_assistant_crud_and_versions(client: LangGraphClient) -> None:
    a = await client.assistants.create(
        "hitl", config={"tags": ["x"]}, metadata={"team": "a"}, name="One"
    )
    assert a["version"] == 1 and a["name"] == "One" and a["graph_id"] == "hitl"
    with pytest.raises(ConflictError):
        await client.assistants.create("hitl", assistant_id=a["assistant_id"])
    same = await client.assistants.create(
        "hitl", assistant_id=a["assistant_id"], if_exists="do_nothing"
    )
    assert same["assistant_id"] == a["assistant_id"]

    patched = await client.assistants.update(a["assistant_id"], name="Two", metadata={"extra": 1})
    assert patched["version"] == 2 and patched["name"] == "Two"
    assert patched["metadata"] == {"team": "a", "extra": 1}
    versions = await client.assistants.get_versions(a["assistant_id"])
    assert [v["version"] for v in versions] == [2, 1]
    back = await client.assistants.set_latest(a["assistant_id"], 1)
    assert back["version"] == 1 and back["name"] == "One"

    found = await client.assistants.search(metadata={"team": "a"})
    assert [x["assistant_id"] for x in found] == [a["assistant_id"]]
    graph = await client.assistants.get_graph(a["assistant_id"])
    assert {n["id"] for n in graph["nodes"]} >= {"draft", "ask", "publish"}
    schemas = await client.assistants.get_schemas(a["assistant_id"])
    assert schemas["graph_id"] == "hitl" and "topic" in schemas["input_schema"]["properties"]

    t = await client.threads.create()
    await client.runs.wait(t["thread_id"], a["assistant_id"], input={"topic": "bye"})
    await client.assistants.delete(a["assistant_id"], delete_threads=True)
    with pytest.raises(NotFoundError):
        await client.assistants.get(a["assistant_id"])
    with pytest.raises(NotFoundError):
        await client.threads.get(t["thread_id"])


async def test_assistant_bad_inputs(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    with pytest.raises(NotFoundError):
        await client.assistants.create("no-such-graph")
    with pytest.raises(NotFoundError):
        await client.assistants.get(str(uuid.uuid4()))
    with pytest.raises(NotFoundError):
        await client.assistants.get("not-a-graph-nor-uuid")
    r = await http.post("/assistants", json={"config": {}})
    assert r.status_code == 422 and "graph_id" in r.json()["detail"]
    r = await http.post(
        "/assistants", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    r = await http.post("/assistants/search", json={"limit": -1})
    assert r.status_code == 422
    r = await http.post(
        "/assistants",
        json={"graph_id": "agent", "config": {"configurable": {"a": 1}}, "context": {"a": 1}},
    )
    assert r.status_code == 400


async def test_search_pagination_headers(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex
    for _ in range(3):
        await client.threads.create(metadata={"page": tag})
    r = await http.post("/threads/search", json={"metadata": {"page": tag}, "limit": 2})
    assert r.status_code == 200 and len(r.json()) == 2
    assert r.headers["X-Pagination-Total"] == "3" and r.headers["X-Pagination-Next"] == "2"
    r = await http.post(
        "/threads/search", json={"metadata": {"page": tag}, "limit": 2, "offset": 2}
    )
    assert len(r.json()) == 1 and "X-Pagination-Next" not in r.headers
    # A page past the end is empty but still reports the total.
    r = await http.post(
        "/threads/search", json={"metadata": {"page": tag}, "limit": 2, "offset": 10}
    )
    assert r.json() == [] and r.headers["X-Pagination-Total"] == "3"


async def test_thread_crud(client: LangGraphClient) -> None:
    tid = str(uuid.uuid4())
    t = await client.threads.create(thread_id=tid, metadata={"user": "u1"})
    assert t["thread_id"] == tid and t["status"] == "idle" and t["metadata"] == {"user": "u1"}
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=tid)
    again = await client.threads.create(thread_id=tid, if_exists="do_nothing")
    assert again["thread_id"] == tid

    patched = await client.threads.update(tid, metadata={"k": "v"})
    assert patched["metadata"] == {"user": "u1", "k": "v"}
    assert [x["thread_id"] for x in await client.threads.search(metadata={"user": "u1"})] == [tid]
    assert await client.threads.count(metadata={"user": "u1"}) == 1
    assert await client.threads.search(status="busy", metadata={"user": "u1"}) == []

    state = await client.threads.get_state(tid)
    assert state["values"] == {} and state["next"] == []
    assert await client.threads.get_history(tid) == []

    copy = await client.threads.copy(tid)
    assert copy["thread_id"] != tid and copy["metadata"]["user"] == "u1"

    await client.threads.delete(tid)
    with pytest.raises(NotFoundError):
        await client.threads.get(tid)
    with pytest.raises(NotFoundError):
        await client.threads.delete(tid)


async def test_thread_bad_inputs(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    assert (await http.get("/threads/not-a-uuid")).status_code == 422
    assert (await http.get(f"/threads/{uuid.uuid4()}")).status_code == 404
    assert (await http.get(f"/threads/{uuid.uuid4()}/state")).status_code == 404
    assert (await http.post("/threads", json={"if_exists": "maybe"})).status_code == 422
    assert (await http.post("/threads", json={"thread_id": "nope"})).status_code == 422
    assert (await http.post("/threads/search", json={"status": "sleeping"})).status_code == 422
    assert (await http.patch(f"/threads/{uuid.uuid4()}", json={"metadata": {}})).status_code == 404
    t = await client.threads.create()
    # no graph has run on this thread yet: updating its state cannot know the schema
    r = await http.post(f"/threads/{t['thread_id']}/state", json={"values": {"a": 1}})
    assert r.status_code == 400
    with pytest.raises(UnprocessableEntityError):
        await client.threads.get_history(t["thread_id"], limit=0)


async def test_store_crud(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    ns = ["users", uuid.uuid4().hex]
    await client.store.put_item(ns, "prefs", {"theme": "dark", "lang": "en"})
    await client.store.put_item(ns, "other", {"theme": "light"}, ttl=5)
    item = await client.store.get_item(ns, "prefs")
    assert item is not None and item["value"] == {"theme": "dark", "lang": "en"}
    assert item["namespace"] == ns and item["key"] == "prefs" and item["created_at"]
    assert await client.store.get_item(ns, "missing") is None

    found = await client.store.search_items(ns[:1], filter={"theme": "dark"})
    assert [i["key"] for i in found["items"] if i["namespace"] == ns] == ["prefs"]
    page = await client.store.search_items(ns, limit=1, offset=1)
    assert len(page["items"]) == 1
    namespaces = await client.store.list_namespaces(prefix=["users"])
    assert ns in namespaces["namespaces"]

    await client.store.delete_item(ns, "prefs")
    assert await client.store.get_item(ns, "prefs") is None


async def test_store_bad_inputs(http: httpx.AsyncClient) -> None:
    r = await http.put("/store/items", json={"namespace": ["a"], "key": "k"})
    assert r.status_code == 422
    r = await http.put("/store/items", json={"namespace": ["a.b"], "key": "k", "value": {}})
    assert r.status_code == 422
    r = await http.put("/store/items", json={"namespace": ["a"], "key": "k", "value": "text"})
    assert r.status_code == 422
    r = await http.get("/store/items", params={"namespace": "a"})
    assert r.status_code == 422
    # Semantic search without store.index: 400 with a detail, as the Agent Server answers.
    r = await http.post("/store/items/search", json={"query": "semantic please"})
    assert r.status_code == 400 and "store.index" in r.json()["detail"]
