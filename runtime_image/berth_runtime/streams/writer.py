"""A run's event writer: the graph never waits for Redis between two events.

The executor used to await one Redis round trip (XADD + EXPIRE) per event, so a model
streaming tokens ran no faster than Redis answered, and every event cost a pipeline. Here an
event is queued and a single flusher task per run sends whatever has queued up since its last
round trip in one pipeline (group commit): one round trip per burst instead of per event, in
order, and the `end` event (with the wake-up for the next run) rides on the last batch.
Backpressure: past `MAX_PENDING` queued events, `emit` waits for the flusher.
"""

from __future__ import annotations

import asyncio
from typing import Any

from berth_runtime.bus import Bus
from berth_runtime.serde import dumps_bytes

MAX_PENDING = 2000


class RunEventWriter:
    def __init__(self, bus: Bus, run_id: str) -> None:
        self.bus = bus
        self.run_id = run_id
        self._pending: list[tuple[str, bytes]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def emit(self, event: str, data: Any) -> None:
        """Queue one event (encoded now, so later mutation of `data` cannot change it)."""
        self._pending.append((event, dumps_bytes(data)))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"berth-events-{self.run_id}")
        elif len(self._pending) >= MAX_PENDING:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self.bus.append_events(self.run_id, batch)

    async def drain(self) -> None:
        """Wait until every queued event has been handed to Redis (or Redis gave up)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._pending:  # queued after the flusher's last look
            await self._flush()
