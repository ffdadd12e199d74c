"""Semantic store search (`store.index`) on pgvector with the local `berth:wordllama` model,
through the real langgraph-sdk client; start-up checks and re-indexing across restarts."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from berth_runtime.store.embeddings import load_embeddings
from berth_runtime.store.index import StoreIndexError, setup_store_index
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import UnprocessableEntityError

from tests.integration.runtime.conftest import RuntimeProcess, launch
from tests.support.servers import Server, create_database

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parents[1] / "store_index"
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "memory"

DOCS = {
    "cats": "Cats are small furry pets that purr and chase mice.",
    "dogs": "Dogs are loyal animals that love walks and playing fetch.",
    "stocks": "The stock market fell today as investors sold shares.",
    "pasta": "Boil the pasta, then add tomato sauce and basil.",
}


def write_config(folder: Path, index: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "graphs": {"memory": f"{EXAMPLE / 'memory.py'}:graph"},
        "store": {"index": index},
    }
    path = folder / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


def wordllama_index(fields: list[str]) -> dict[str, Any]:
    return {"dims": 256, "embed": "berth:wordllama", "fields": fields}


@pytest.fixture(scope="module")
def semantic_server(
    postgres: Server, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    """The example memory agent (examples/memory: store.index with berth:wordllama)."""
    tmp = tmp_path_factory.mktemp("semantic")
    db = create_database(postgres.uri, f"s_{uuid.uuid4().hex[:12]}")
    rp = launch("serve", db, redis.uri, tmp, config=EXAMPLE / "langgraph.json")
    yield rp
    rp.terminate()


@pytest.fixture
async def sdk(semantic_server: RuntimeProcess) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=semantic_server.url)
    yield c
    await c.aclose()


async def put_docs(c: LangGraphClient, ns: list[str], docs: dict[str, str], **extra: Any) -> None:
    for key, text in docs.items():
        await c.store.put_item(ns, key, {"text": text, **extra})


async def test_related_texts_rank_above_unrelated(sdk: LangGraphClient) -> None:
    ns = ["docs", uuid.uuid4().hex]
    await put_docs(sdk, ns, DOCS)
    for query, best in [
        ("kittens meowing", "cats"),
        ("puppy on a leash", "dogs"),
        ("investing in equities", "stocks"),
        ("an Italian dinner recipe", "pasta"),
    ]:
        items = (await sdk.store.search_items(ns, query=query, limit=4))["items"]
        assert items[0]["key"] == best, (query, items)
        scores = [i["score"] for i in items]
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4
        assert scores[0] > scores[-1] + 0.1
    # Without a query: no score, most recently updated first (the store's plain search).
    plain = (await sdk.store.search_items(ns, limit=4))["items"]
    assert [i["key"] for i in plain] == ["pasta", "stocks", "dogs", "cats"]
    assert all("score" not in i for i in plain)


async def test_query_with_filter_prefix_limit_offset(sdk: LangGraphClient) -> None:
    root = ["shelf", uuid.uuid4().hex]
    await put_docs(sdk, [*root, "en"], DOCS, lang="en")
    await put_docs(sdk, [*root, "fr"], {f"{k}-fr": v for k, v in DOCS.items()}, lang="fr")
    query = "kittens meowing"
    everything = (await sdk.store.search_items(root, query=query, limit=8))["items"]
    assert len(everything) == 8
    assert {i["key"] for i in everything[:2]} == {"cats", "cats-fr"}
    only_fr = (await sdk.store.search_items(root, query=query, filter={"lang": "fr"}))["items"]
    assert only_fr[0]["key"] == "cats-fr" and len(only_fr) == 4
    assert all(i["value"]["lang"] == "fr" for i in only_fr)
    only_en = (await sdk.store.search_items([*root, "en"], query=query))["items"]
    assert {i["key"] for i in only_en} == set(DOCS) and only_en[0]["key"] == "cats"
    keys = [i["key"] for i in everything]
    page = (await sdk.store.search_items(root, query=query, limit=3, offset=2))["items"]
    assert [i["key"] for i in page] == keys[2:5]
    deep = (await sdk.store.search_items(root, query=query, limit=2, offset=7))["items"]
    assert [i["key"] for i in deep] == keys[7:]


async def test_index_false_and_index_override(sdk: LangGraphClient) -> None:
    ns = ["notes", uuid.uuid4().hex]
    await put_docs(sdk, ns, {"dogs": DOCS["dogs"], "stocks": DOCS["stocks"]})
    # Not indexed: out of semantic ranking, though its text is the query itself.
    await sdk.store.put_item(ns, "hidden", {"text": "kittens meowing"}, index=False)
    # Indexed on another field than the configured one.
    await sdk.store.put_item(
        ns, "titled", {"text": DOCS["pasta"], "title": "a kitten asleep"}, index=["title"]
    )
    ranked = (await sdk.store.search_items(ns, query="kittens meowing"))["items"]
    assert ranked[0]["key"] == "titled"
    assert {i["key"] for i in ranked} == {"titled", "dogs", "stocks"}
    assert "hidden" not in {i["key"] for i in ranked}
    hidden = await sdk.store.get_item(ns, "hidden")
    assert hidden is not None and hidden["value"] == {"text": "kittens meowing"}
    assert "hidden" in {i["key"] for i in (await sdk.store.search_items(ns))["items"]}
    # Re-put with index=False: its old vectors go, it leaves the ranking.
    await sdk.store.put_item(ns, "dogs", {"text": DOCS["dogs"]}, index=False)
    ranked = (await sdk.store.search_items(ns, query="puppy on a leash"))["items"]
    assert "dogs" not in {i["key"] for i in ranked} and len(ranked) == 2


async def test_example_memory_agent_recalls_by_meaning(sdk: LangGraphClient) -> None:
    user = uuid.uuid4().hex
    for text in DOCS.values():
        await sdk.runs.wait(None, "memory", input={"user_id": user, "remember": text})
    out = await sdk.runs.wait(None, "memory", input={"user_id": user, "recall": "my kitten"})
    assert isinstance(out, dict) and out["memories"][0] == DOCS["cats"]
    assert len(out["memories"]) == 3
    # The graph's memories are the store's items: the HTTP API ranks them the same way.
    items = (await sdk.store.search_items(["memories", user], query="my kitten"))["items"]
    assert [i["value"]["text"] for i in items[:3]] == out["memories"]
    other = await sdk.runs.wait(None, "memory", input={"user_id": "nobody", "recall": "cat"})
    assert isinstance(other, dict) and other["memories"] == []


async def test_restart_with_other_index_settings(
    postgres: Server, redis: Server, tmp_path: Path
) -> None:
    db = create_database(postgres.uri, f"s_{uuid.uuid4().hex[:12]}")
    ns = ["kb", "x"]
    first = launch(
        "serve",
        db,
        redis.uri,
        tmp_path,
        config=write_config(tmp_path / "a", wordllama_index(["text"])),
    )
    c = get_client(url=first.url)
    try:
        # `text` is about cats, `title` about the stock market.
        await c.store.put_item(ns, "mixed", {"text": DOCS["cats"], "title": DOCS["stocks"]})
        await c.store.put_item(ns, "pets", {"text": DOCS["dogs"], "title": "walks in the park"})
        await c.store.put_item(ns, "off", {"text": "shares and stock prices"}, index=False)
        ranked = (await c.store.search_items(ns, query="stock market shares"))["items"]
        assert {i["key"] for i in ranked} == {"mixed", "pets"}
        before = {i["key"]: i["score"] for i in ranked}
    finally:
        await c.aclose()
        first.terminate()

    # Restarted with `fields: ["title"]` (and the local model behind a function path):
    # existing items are embedded again from their titles; `index: false` stays out.
    second = launch(
        "serve",
        db,
        redis.uri,
        tmp_path,
        config=write_config(
            tmp_path / "b",
            {"dims": 256, "embed": f"{HERE / 'embed.py'}:embed", "fields": ["title"]},
        ),
    )
    c = get_client(url=second.url)
    try:
        assert "re-embedding items" in second.log()
        ranked = (await c.store.search_items(ns, query="stock market shares"))["items"]
        assert [i["key"] for i in ranked] == ["mixed", "pets"]
        assert ranked[0]["score"] > before["mixed"] + 0.1
        # An embedding of the wrong size is refused with a clear error, and nothing is stored.
        with pytest.raises(UnprocessableEntityError) as e:
            await c.store.put_item(ns, "bad", {"title": "WRONG DIMS"})
        assert "3 dimensions" in str(e.value.body) and "dims is 256" in str(e.value.body)
        assert await c.store.get_item(ns, "bad") is None
        async with httpx.AsyncClient(base_url=second.url, timeout=60) as http:
            r = await http.post("/store/items/search", json={"query": "WRONG DIMS"})
            assert r.status_code == 422 and "3 dimensions" in r.json()["detail"]
    finally:
        await c.aclose()
        second.terminate()

    # A 128-dimension model on the 256-dimension index: start-up stops, naming both sizes.
    bad = launch(
        "serve",
        db,
        redis.uri,
        tmp_path,
        wait=False,
        config=write_config(
            tmp_path / "d", {"dims": 128, "embed": f"{HERE / 'embed.py'}:embed_128"}
        ),
    )
    assert bad.proc.wait(120) != 0
    assert "existing vector index in Postgres holds 256-dimension vectors" in bad.log()


async def test_start_checks_the_model_against_dims(postgres: Server) -> None:
    """The check `berth-runtime` runs at start, in-process: the model's vectors must have
    `dims` dimensions (the process then exits with this message, as the test above shows for
    an index of another size)."""
    db = create_database(postgres.uri, f"s_{uuid.uuid4().hex[:12]}")
    index = {"dims": 128, "embed": "berth:wordllama", "fields": ["$"]}
    with pytest.raises(
        StoreIndexError, match=r"returned a vector of 256 dimensions, but store\.index\.dims is 128"
    ):
        await setup_store_index(db, index, load_embeddings(index, HERE))
