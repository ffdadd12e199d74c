"""Redis as a helper, never a source of truth: wake-ups, cancel signals, resumable run streams.

Every method degrades gracefully: when Redis is unreachable it logs (once per outage) and
returns a neutral value, and callers fall back to polling Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

StreamEntry = tuple[str, str, bytes]  # (redis stream id, event name, JSON data)


class Bus:
    def __init__(self, redis_uri: str | None, database_uri: str, stream_ttl_seconds: int) -> None:
        # Deployments that share a Redis must not wake each other's workers.
        scope = hashlib.sha1(database_uri.encode()).hexdigest()[:10]
        self.prefix = f"berth:{scope}:"
        self.stream_ttl = stream_ttl_seconds
        self._client: aioredis.Redis | None = None
        if redis_uri:
            self._client = aioredis.Redis.from_url(
                redis_uri, socket_connect_timeout=1.0, health_check_interval=15
            )
        self._down = False

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def _failed(self, op: str, err: BaseException) -> None:
        if not self._down:
            log.warning("redis unavailable (%s: %s); falling back to Postgres polling", op, err)
        self._down = True

    def _ok(self) -> None:
        if self._down:
            log.info("redis reachable again")
        self._down = False

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _stream_key(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}:events"

    async def wake(self, count: int = 1) -> None:
        """Tell idle workers that a run is ready."""
        if self._client is None:
            return
        try:
            key = f"{self.prefix}wake"
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.lpush(key, *(["1"] * max(1, count)))
                pipe.ltrim(key, 0, 999)
                await pipe.execute()
            self._ok()
        except (RedisError, OSError) as e:
            self._failed("wake", e)

    async def wait_for_wake(self, seconds: float) -> None:
        """Return when woken or after `seconds`, whichever comes first."""
        if self._client is None:
            await asyncio.sleep(seconds)
            return
        try:
            await self._client.blpop([f"{self.prefix}wake"], timeout=max(seconds, 0.01))
            self._ok()
        except (RedisError, OSError) as e:
            self._failed("wait_for_wake", e)
            await asyncio.sleep(seconds)

    async def publish_cancel(self, run_id: str, action: str) -> None:
        if self._client is None:
            return
        try:
            await self._client.publish(f"{self.prefix}cancel", f"{run_id}:{action}")
            self._ok()
        except (RedisError, OSError) as e:
            self._failed("publish_cancel", e)

    async def cancel_signals(self, retry_seconds: float) -> AsyncIterator[tuple[str, str]]:
        """Yield (run_id, action) for every cancel published; reconnects after an outage."""
        if self._client is None:
            return
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(f"{self.prefix}cancel")
                self._ok()
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    raw = msg["data"]
                    text = raw.decode() if isinstance(raw, bytes) else str(raw)
                    run_id, _, action = text.partition(":")
                    yield run_id, action or "interrupt"
            except (RedisError, OSError) as e:
                self._failed("cancel_signals", e)
                await asyncio.sleep(retry_seconds)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def append_event(
        self, run_id: str, event: str, data: bytes, wake: bool = False
    ) -> str | None:
        """Add an event to the run's stream; returns its id (None when Redis is down).

        `wake=True` also wakes an idle worker in the same round trip (a run just ended).
        """
        if self._client is None:
            return None
        key = self._stream_key(run_id)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.xadd(key, {"e": event, "d": data}, maxlen=100_000, approximate=True)
                pipe.expire(key, self.stream_ttl)
                if wake:
                    pipe.lpush(f"{self.prefix}wake", "1")
                    pipe.ltrim(f"{self.prefix}wake", 0, 999)
                res: list[Any] = await pipe.execute()
            self._ok()
            raw = res[0]
            return raw.decode() if isinstance(raw, bytes) else str(raw)
        except (RedisError, OSError) as e:
            self._failed("append_event", e)
            return None

    async def append_events(
        self, run_id: str, events: list[tuple[str, bytes]], wake: bool = False
    ) -> bool:
        """Add several events to the run's stream in one round trip (in order); False when
        Redis is down. `wake=True` also wakes an idle worker (the run just ended)."""
        if self._client is None:
            return False
        key = self._stream_key(run_id)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for event, data in events:
                    pipe.xadd(key, {"e": event, "d": data}, maxlen=100_000, approximate=True)
                pipe.expire(key, self.stream_ttl)
                if wake:
                    pipe.lpush(f"{self.prefix}wake", "1")
                    pipe.ltrim(f"{self.prefix}wake", 0, 999)
                await pipe.execute()
            self._ok()
            return True
        except (RedisError, OSError) as e:
            self._failed("append_events", e)
            return False

    async def last_event(self, run_id: str) -> StreamEntry | None:
        """The newest event of the run's stream (None: no stream, or Redis is down)."""
        if self._client is None:
            return None
        try:
            res: Any = await self._client.xrevrange(self._stream_key(run_id), count=1)
            self._ok()
        except (RedisError, OSError) as e:
            self._failed("last_event", e)
            return None
        for entry_id, fields in res or []:
            eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            ev = fields.get(b"e", b"")
            return eid, ev.decode() if isinstance(ev, bytes) else str(ev), fields.get(b"d", b"")
        return None

    async def read_events(
        self, run_id: str, after_id: str, block_ms: int
    ) -> list[StreamEntry] | None:
        """Events after `after_id` (waiting up to block_ms); None when Redis is down."""
        if self._client is None:
            return None
        try:
            kwargs: dict[str, Any] = {"count": 500}
            if block_ms > 0:
                kwargs["block"] = block_ms
            res: Any = await self._client.xread({self._stream_key(run_id): after_id}, **kwargs)
            self._ok()
        except (RedisError, OSError) as e:
            self._failed("read_events", e)
            return None
        out: list[StreamEntry] = []
        for _key, entries in res or []:
            for entry_id, fields in entries:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                ev = fields.get(b"e", b"")
                out.append(
                    (
                        eid,
                        ev.decode() if isinstance(ev, bytes) else str(ev),
                        fields.get(b"d", b"null"),
                    )
                )
        return out
