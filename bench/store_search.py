"""Semantic store search: Berth (pgvector) against `langgraph dev` (in-memory), same items,
same queries, same client.

Both servers index the `text` field of every item with the same local model (WordLlama's
256-dimension `l2_supercat`, whose weights ship in the `wordllama` wheel: `berth:wordllama`
on Berth, the same function by path on `langgraph dev`). The items are synthetic notes on
a dozen topics, spread over 10 namespaces under `("bench",)`.

Loading: Berth's items are written straight into Postgres with their precomputed vectors
(COPY, then the HNSW index is built, as `store.setup()` defines it), so 100k items take a
minute, not an hour; `langgraph dev` has no bulk path, so its items go through
`PUT /store/items` (concurrently), and when that is too slow here the peer gets the largest
size loaded within `--peer-load-seconds` (the report says which size each side had).

Measured: `POST /store/items/search` with `query`, `namespace_prefix=["bench"]`, `limit=10`,
one langgraph-sdk client, one request at a time, after warm-up: p50/p99 latency in ms, and
how often the best hit is on the query's topic (the two servers should agree on quality).
Berth's Postgres is durable (fsync, synchronous_commit and full_page_writes on).

    .venv/bin/python bench/store_search.py [--items 100000] [--peer-items N] [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the repo, on sys.path
    sys.path.insert(0, str(ROOT))
if str(ROOT / "runtime_image") not in sys.path:
    sys.path.insert(0, str(ROOT / "runtime_image"))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from berth_runtime.store.wordllama import embed  # noqa: E402
from langgraph_sdk import get_client  # noqa: E402

from examples.demo_runtime import serve_berth_runtime, stop_process, wait_until_ok  # noqa: E402
from tests.support.servers import (  # noqa: E402
    create_database,
    free_port,
    postgres_server,
    redis_server,
    wait_for_port,
)

GRAPHS = ROOT / "bench" / "store_graphs"
BENCH_VENV = ROOT / ".venv-bench"
NAMESPACES = 10
WARMUP = 20

TOPICS: dict[str, tuple[list[str], list[str]]] = {
    # topic: (words the notes use, queries that ask for the topic without those exact words)
    "pets": (
        ["cat", "kitten", "dog", "puppy", "leash", "vet", "purring", "fetch", "litter box"],
        ["my furry animal companion at home", "looking after a young pet"],
    ),
    "finance": (
        ["stocks", "bonds", "dividend", "portfolio", "interest rate", "market", "shares"],
        ["investing money for retirement", "how equities performed this quarter"],
    ),
    "cooking": (
        ["pasta", "garlic", "oven", "recipe", "simmer", "tomato sauce", "baking", "flour"],
        ["what to make for dinner tonight", "preparing a meal in the kitchen"],
    ),
    "football": (
        ["goal", "striker", "referee", "penalty", "league", "midfielder", "stadium"],
        ["the soccer match last weekend", "a team winning the championship"],
    ),
    "weather": (
        ["rain", "storm", "forecast", "sunny", "snow", "temperature", "humidity", "wind"],
        ["will it be cold tomorrow", "the climate outside this week"],
    ),
    "travel": (
        ["flight", "airport", "hotel", "passport", "luggage", "beach", "itinerary"],
        ["planning a holiday abroad", "booking a trip to another country"],
    ),
    "health": (
        ["doctor", "fever", "vaccine", "hospital", "medicine", "symptoms", "nurse"],
        ["feeling sick and seeing a physician", "treatment for an illness"],
    ),
    "music": (
        ["guitar", "concert", "melody", "drums", "album", "singer", "orchestra"],
        ["listening to songs from a band", "playing an instrument on stage"],
    ),
    "gardening": (
        ["tomatoes", "compost", "seeds", "roses", "watering", "soil", "weeds"],
        ["growing plants in the backyard", "looking after flowers and vegetables"],
    ),
    "programming": (
        ["python", "compiler", "bug", "function", "database", "deploy", "unit test"],
        ["writing software code", "fixing an error in my program"],
    ),
    "cars": (
        ["engine", "tyres", "brakes", "fuel", "mechanic", "gearbox", "highway"],
        ["repairing my vehicle", "driving an automobile on the road"],
    ),
    "astronomy": (
        ["telescope", "planet", "galaxy", "comet", "orbit", "nebula", "moon"],
        ["stars in the night sky", "exploring outer space"],
    ),
}
FILLER = ["today", "again", "with friends", "this morning", "a note", "remember", "later"]


def make_items(n: int, seed: int = 7) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace label, key, value) for n synthetic notes; deterministic."""
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    out = []
    for i in range(n):
        topic = topics[i % len(topics)]
        words = rng.sample(TOPICS[topic][0], 3)
        text = f"{rng.choice(FILLER)}: {words[0]}, {words[1]} and {words[2]} {rng.randrange(1000)}"
        out.append((f"s{i % NAMESPACES}", f"item-{i}", {"text": text, "topic": topic}))
    return out


def queries() -> list[tuple[str, str]]:
    return [(q, topic) for topic, (_, qs) in sorted(TOPICS.items()) for q in qs]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Result:
    name: str
    items: int
    load_seconds: float
    latencies_ms: list[float]
    on_topic: float

    def line(self) -> str:
        return (
            f"{self.name:<14} items {self.items:>7}  search p50 "
            f"{percentile(self.latencies_ms, 0.5):7.1f} ms  p99 "
            f"{percentile(self.latencies_ms, 0.99):7.1f} ms  top-1 on topic "
            f"{self.on_topic:5.1%}  (loaded in {self.load_seconds:.0f} s)"
        )


async def measure(name: str, url: str, n_items: int, load_s: float, n: int) -> Result:
    client = get_client(url=url, timeout=httpx.Timeout(120.0))
    qs = queries()
    latencies: list[float] = []
    hits = 0
    try:
        for i in range(WARMUP + n):
            text, topic = qs[i % len(qs)]
            start = time.perf_counter()
            found = await client.store.search_items(["bench"], query=text, limit=10)
            elapsed = (time.perf_counter() - start) * 1000
            items = found["items"]
            if len(items) != 10 or "score" not in items[0]:
                raise RuntimeError(f"{name}: unexpected search answer {found!r:.300}")
            if i >= WARMUP:
                latencies.append(elapsed)
                hits += items[0]["value"]["topic"] == topic
    finally:
        await client.aclose()
    return Result(name, n_items, load_s, latencies, hits / n)


# ---------------------------------------------------------------------------------------
# Berth: bulk load into Postgres, searches over HTTP
# ---------------------------------------------------------------------------------------


def berth_config(workdir: Path) -> Path:
    config = {
        "graphs": {"echo": f"{GRAPHS / 'echo.py'}:graph"},
        "store": {"index": {"dims": 256, "embed": "berth:wordllama", "fields": ["text"]}},
    }
    path = workdir / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


def bulk_load_berth(database_uri: str, items: list[tuple[str, str, dict[str, Any]]]) -> None:
    """COPY the items and their vectors, then rebuild the HNSW index the store defined."""
    with psycopg.connect(database_uri, autocommit=True) as conn:
        row = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'store_vectors_embedding_idx'"
        ).fetchone()
        if row is None:
            raise RuntimeError("store_vectors_embedding_idx missing: did store.setup() run?")
        conn.execute("DROP INDEX store_vectors_embedding_idx")
        for start in range(0, len(items), 5000):
            chunk = items[start : start + 5000]
            vectors = embed([v["text"] for _, _, v in chunk])
            with conn.cursor() as cur:
                with cur.copy("COPY store (prefix, key, value) FROM STDIN") as copy:
                    for ns, key, value in chunk:
                        copy.write_row((f"bench.{ns}", key, json.dumps(value)))
                with cur.copy(
                    "COPY store_vectors (prefix, key, field_name, embedding) FROM STDIN"
                ) as copy:
                    for (ns, key, _), vector in zip(chunk, vectors, strict=True):
                        copy.write_row((f"bench.{ns}", key, "text", json.dumps(vector)))
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(row[0])
        conn.execute("ANALYZE store")
        conn.execute("ANALYZE store_vectors")


@contextlib.contextmanager
def berth_server(items: list[tuple[str, str, dict[str, Any]]]) -> Iterator[tuple[str, float]]:
    print(">> starting Postgres (durable: fsync on) and Redis for Berth", flush=True)
    with postgres_server(durable=True) as postgres, redis_server() as redis:
        database_uri = create_database(postgres.uri, "berth_store_bench")
        workdir = Path(tempfile.mkdtemp(prefix="berth-store-bench-"))
        with serve_berth_runtime(
            berth_config(workdir), database_uri, redis.uri, env={"LOG_LEVEL": "warning"}
        ) as server:
            print(f">> loading {len(items)} items into Berth's Postgres (COPY)", flush=True)
            start = time.monotonic()
            bulk_load_berth(database_uri, items)
            yield server.url, time.monotonic() - start
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# langgraph dev: items over HTTP
# ---------------------------------------------------------------------------------------


def ensure_bench_venv() -> Path:
    done = subprocess.run(
        ["bash", str(ROOT / "hack" / "ensure-bench-venv.sh")], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"hack/ensure-bench-venv.sh failed:\n{done.stdout}{done.stderr}")
    return BENCH_VENV / "bin" / "langgraph"


@contextlib.contextmanager
def langgraph_dev() -> Iterator[str]:
    langgraph = ensure_bench_venv()
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="berth-store-bench-lgdev-"))
    graphs = workdir / "graphs"
    shutil.copytree(GRAPHS, graphs, ignore=shutil.ignore_patterns("__pycache__"))
    log = workdir / "langgraph-dev.log"
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "BERTH_RUNTIME_SRC": str(ROOT / "runtime_image"),
    }
    command = [
        str(langgraph), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
        "--port", str(port), "--config", "langgraph.json", "--server-log-level", "WARNING",
    ]  # fmt: skip
    print(">> starting langgraph dev (langgraph-cli[inmem], in-memory store)", flush=True)
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=graphs
        )
    try:
        wait_for_port(port, 180, proc)
        url = f"http://127.0.0.1:{port}"
        wait_until_ok(url, proc, timeout=180)
        yield url
    except BaseException:
        print(f"!! langgraph dev log:\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
        raise
    finally:
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


async def load_over_http(
    url: str, items: list[tuple[str, str, dict[str, Any]]], budget_s: float, concurrency: int
) -> tuple[int, float]:
    """PUT items until done or the budget is spent; returns (items loaded, seconds)."""
    start = time.monotonic()
    next_index = 0
    loaded = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal next_index, loaded
        while next_index < len(items) and time.monotonic() - start < budget_s:
            ns, key, value = items[next_index]
            next_index += 1
            body = {"namespace": ["bench", ns], "key": key, "value": value}
            r = await http.put("/store/items", json=body)
            r.raise_for_status()
            loaded += 1

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return loaded, time.monotonic() - start


# ---------------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Semantic store search: Berth vs langgraph dev")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--peer-items", type=int, default=None, help="default: --items")
    parser.add_argument("--peer-load-seconds", type=float, default=900.0)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--peer-queries", type=int, default=None, help="default: --queries (the peer is slow)"
    )
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    print(
        f">> machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{load_average()}; model berth:wordllama (256 dims)",
        flush=True,
    )
    items = make_items(args.items)
    results: list[Result] = []
    with berth_server(items) as (url, load_s):
        print(f">> measuring Berth ({args.queries} searches)", flush=True)
        results.append(asyncio.run(measure("berth", url, len(items), load_s, args.queries)))
    print(results[-1].line(), flush=True)
    if not args.skip_peer:
        peer_items = make_items(args.peer_items or args.items)
        with langgraph_dev() as url:
            print(
                f">> loading up to {len(peer_items)} items into langgraph dev over HTTP", flush=True
            )
            loaded, load_s = asyncio.run(
                load_over_http(url, peer_items, args.peer_load_seconds, 16)
            )
            if loaded < len(peer_items):
                print(
                    f">> langgraph dev: {loaded} of {len(peer_items)} items loaded within "
                    f"{args.peer_load_seconds:.0f} s; measuring at that size",
                    flush=True,
                )
            n_peer = args.peer_queries or args.queries
            print(f">> measuring langgraph dev ({n_peer} searches)", flush=True)
            results.append(asyncio.run(measure("langgraph-dev", url, loaded, load_s, n_peer)))
        print(results[-1].line(), flush=True)
    print("\n== semantic store search (query, namespace_prefix, limit 10), one client ==")
    for r in results:
        print(r.line())
    if len(results) == 2:
        berth, peer = results
        for q in (0.5, 0.99):
            b, p = percentile(berth.latencies_ms, q), percentile(peer.latencies_ms, q)
            print(f"ratio p{int(q * 100)}: langgraph dev / Berth = {p / b:.2f}x")
        if berth.items != peer.items:
            print(f"note: Berth had {berth.items} items, langgraph dev {peer.items}")
    print(f">> load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
