"""Stream latency: model token -> client, Berth against `langgraph dev`, same graph, same run.

One client streams one run at a time with `stream_mode="messages-tuple"`. The graph
(bench/graphs/tokens.py) has a fake chat model that streams N tokens and stamps each chunk's
text with the wall-clock time it produced it; the client, on the same machine, subtracts that from
the time the chunk arrived, so each token gives one latency sample of the whole path (Berth:
worker -> Redis stream -> API process -> SSE; dev server: in-process queue -> SSE). Only tokens
made after the client got the stream's first event count (see `stream_once`).

Two phases per server:
  paced   `--streams` runs of `--tokens` tokens, one every `--interval-ms` (a model's pace):
          token -> client p50 / p99 / max latency.
  burst   `--burst-streams` runs of `--burst-tokens` tokens with no pause: events/s on one
          stream (tokens / time from the first to the last token received) and latency under
          that backlog.

Berth's Postgres is durable (as shipped) unless `--unsafe-fast-db`, which labels every line.

    .venv/bin/python bench/stream_latency.py [--tokens 200] [--interval-ms 5] [--serve]
"""

import argparse
import asyncio
import contextlib
import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from langgraph_sdk import get_client  # noqa: E402
from runtime_throughput import (  # noqa: E402
    UNSAFE_LABEL,
    Target,
    berth_server,
    db_mode,
    label_unsafe_output,
    langgraph_dev_server,
    load_average,
    machine,
    percentile,
)

ASSISTANT = "tokens"


@dataclass(frozen=True)
class StreamResult:
    latencies: list[float]  # per token, seconds
    events_per_second: float  # tokens / (last token received - first token received)


@dataclass(frozen=True)
class ServerResult:
    name: str
    paced: list[StreamResult]
    burst: list[StreamResult]

    @staticmethod
    def _lat(results: list[StreamResult]) -> list[float]:
        return [x for r in results for x in r.latencies]

    def row(self, key: str) -> float:
        phase, metric = key.split(":")
        results = self.paced if phase == "paced" else self.burst
        if metric == "events/s":
            return float(sorted(r.events_per_second for r in results)[len(results) // 2])
        lat = self._lat(results)
        q = {"p50": 50.0, "p99": 99.0, "max": 100.0}[metric]
        return percentile(lat, q) * 1000


ROWS = [
    ("paced: token->client p50 ms", "paced:p50"),
    ("paced: token->client p99 ms", "paced:p99"),
    ("paced: token->client max ms", "paced:max"),
    ("burst: events/s (one stream)", "burst:events/s"),
    ("burst: token->client p50 ms", "burst:p50"),
    ("burst: token->client p99 ms", "burst:p99"),
]


def report(berth: ServerResult, peer: ServerResult | None) -> str:
    header = f"{'metric':<32}{'berth':>12}"
    if peer is not None:
        header += f"{peer.name:>16}{'berth/peer':>12}"
    lines = [header, "-" * len(header)]
    for label, key in ROWS:
        ours = berth.row(key)
        line = f"{label:<32}{ours:>12.2f}"
        if peer is not None:
            theirs = peer.row(key)
            line += f"{theirs:>16.2f}{(ours / theirs if theirs else 0):>12.2f}"
        lines.append(line)
    return "\n".join(lines)


async def stream_once(client: Any, thread_id: str, n: int, interval: float) -> StreamResult:
    latencies: list[float] = []
    received: list[float] = []
    opened: float | None = None  # when the first event (metadata) reached the client
    async for chunk in client.runs.stream(
        thread_id,
        ASSISTANT,
        input={"messages": [{"role": "user", "content": "go"}], "n": n, "interval": interval},
        stream_mode="messages-tuple",
    ):
        now = time.time()
        opened = now if opened is None else opened
        if chunk.event == "error":
            raise RuntimeError(f"run failed: {chunk.data}")
        if chunk.event != "messages":
            continue
        content = chunk.data[0].get("content")
        if not isinstance(content, str) or "@" not in content:
            continue  # the final whole message, not a token
        emitted = float(content.split("@", 1)[1].rstrip(";"))
        received.append(now)
        # Only tokens made once the stream was open: Berth starts a run within milliseconds,
        # often before the client has its first event, while the dev server's queue poll
        # starts it 0.5 to 1 s later; counting tokens that waited for the stream to open
        # would measure that start-up race, not streaming.
        if emitted >= opened:
            latencies.append(now - emitted)
    if len(received) != n:
        raise RuntimeError(f"expected {n} token events, got {len(received)}")
    if not latencies:
        raise RuntimeError("every token was made before the stream opened: use more tokens")
    span = received[-1] - received[0]
    return StreamResult(latencies, (n - 1) / span if span > 0 else 0.0)


async def measure(name: str, target: Target, args: argparse.Namespace) -> ServerResult:
    client = get_client(url=target.url, timeout=120.0)
    try:
        thread_id = (await client.threads.create())["thread_id"]
        await stream_once(client, thread_id, 20, 0.0)  # warm-up
        print(f"   {name}: paced ({args.streams} x {args.tokens} tokens)", flush=True)
        paced = [
            await stream_once(client, thread_id, args.tokens, args.interval_ms / 1000)
            for _ in range(args.streams)
        ]
        print(f"   {name}: burst ({args.burst_streams} x {args.burst_tokens} tokens)", flush=True)
        burst = [
            await stream_once(client, thread_id, args.burst_tokens, 0.0)
            for _ in range(args.burst_streams)
        ]
    finally:
        await client.aclose()
    return ServerResult(name, paced, burst)


async def bench_server(
    name: str,
    server: Callable[[], contextlib.AbstractContextManager[Target]],
    args: argparse.Namespace,
) -> ServerResult:
    with server() as target:
        return await asyncio.wait_for(measure(name, target, args), args.timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Berth vs langgraph dev: token stream latency.")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per paced stream (200)")
    parser.add_argument("--interval-ms", type=float, default=5.0, help="pause per token (5)")
    parser.add_argument("--streams", type=int, default=5, help="paced streams (5)")
    parser.add_argument("--burst-tokens", type=int, default=2000, help="tokens per burst (2000)")
    parser.add_argument("--burst-streams", type=int, default=3, help="burst streams (3)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per server (300)")
    parser.add_argument("--no-peer", action="store_true", help="skip langgraph dev (no ratio)")
    parser.add_argument(
        "--unsafe-fast-db",
        action="store_true",
        help="Berth's Postgres with fsync, synchronous_commit and full_page_writes off (not "
        "durable); every printed line is labelled " + UNSAFE_LABEL.strip(),
    )
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        "--split", action="store_true", default=True, help="Berth as api + worker (default)"
    )
    layout.add_argument("--serve", dest="split", action="store_false", help="one serve process")
    args = parser.parse_args(argv)
    if not (1 <= args.tokens <= 20000 and 1 <= args.streams <= 100):
        parser.error("--tokens must be 1..20000 and --streams 1..100")
    if not (2 <= args.burst_tokens <= 100000 and 1 <= args.burst_streams <= 100):
        parser.error("--burst-tokens must be 2..100000 and --burst-streams 1..100")
    if not 0 <= args.interval_ms <= 1000:
        parser.error("--interval-ms must be 0..1000")

    durable = not args.unsafe_fast_db
    if not durable:
        label_unsafe_output()

    print(f">> stream latency: messages-tuple, {args.tokens} tokens every {args.interval_ms} ms")
    print(f"   machine: {machine()}")
    print(f"   postgres: {db_mode(durable)}; load average at start: {load_average()}")
    berth_name = "berth (api + worker)" if args.split else "berth"
    berth_target = functools.partial(berth_server, args.split, durable)
    berth = asyncio.run(bench_server(berth_name, berth_target, args))
    peer = (
        None
        if args.no_peer
        else asyncio.run(bench_server("langgraph-dev", langgraph_dev_server, args))
    )
    print()
    print(report(berth, peer))
    print(f"load average at end: {load_average()}")
    print()
    print(
        "token->client = client receive time - the time the model produced the chunk (same "
        "clock). events/s = one stream's token events per second, first to last token, "
        "median stream. berth/peer above 1 means Berth is higher (better for events/s, worse "
        "for latency)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
