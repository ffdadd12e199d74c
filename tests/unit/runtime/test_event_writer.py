"""The run event writer: order kept, bursts batched, nothing lost on drain (no Redis needed:
the bus here only records what it is handed)."""

from __future__ import annotations

import asyncio
from typing import Any

from berth_runtime.streams.writer import RunEventWriter


class RecordingBus:
    """Stands in for Redis: records each pipeline (batch) and takes a loop turn per call."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, bytes]]] = []

    async def append_events(self, run_id: str, events: list[tuple[str, bytes]]) -> bool:
        await asyncio.sleep(0.001)
        self.batches.append(list(events))
        return True


def test_burst_is_sent_in_order_in_fewer_round_trips() -> None:
    bus = RecordingBus()

    async def main() -> None:
        writer = RunEventWriter(bus, "r1")  # type: ignore[arg-type]
        for i in range(50):
            await writer.emit("messages", {"i": i})
        await writer.drain()

    asyncio.run(main())
    sent = [e for batch in bus.batches for e in batch]
    assert [e[1] for e in sent] == [f'{{"i":{i}}}'.encode() for i in range(50)]
    assert len(bus.batches) < 50  # later events rode along while the first was in flight


def test_events_are_encoded_when_emitted() -> None:
    bus = RecordingBus()

    async def main() -> None:
        writer = RunEventWriter(bus, "r1")  # type: ignore[arg-type]
        data: dict[str, Any] = {"n": 1}
        await writer.emit("values", data)
        data["n"] = 2  # the graph mutating its state afterwards changes nothing sent
        await writer.emit("values", data)
        await writer.drain()

    asyncio.run(main())
    assert [e[1] for b in bus.batches for e in b] == [b'{"n":1}', b'{"n":2}']


def test_drain_with_nothing_queued_returns() -> None:
    async def main() -> None:
        await RunEventWriter(RecordingBus(), "r1").drain()  # type: ignore[arg-type]

    asyncio.run(main())
