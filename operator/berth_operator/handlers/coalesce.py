"""Run at most one reconcile per object at a time, and merge bursts of requests.

Child objects change in bursts (a rollout updates a Deployment's status many
times); each change asks for its owner's reconcile. A request made while one is
already waiting to start is dropped: the waiting pass will read the newest state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

Key = tuple[str, str]


class Coalescer:
    def __init__(self, run: Callable[[Key], Awaitable[None]]) -> None:
        self._run = run
        self._locks: dict[Key, asyncio.Lock] = {}
        self._waiting: set[Key] = set()
        self._later: dict[Key, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def request(self, key: Key, *, force: bool = False) -> None:
        """Reconcile ``key`` soon; ``force`` always runs (and propagates errors)."""
        if not force and key in self._waiting:
            return
        if not force:
            self._waiting.add(key)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                self._waiting.discard(key)
                await self._run(key)
        finally:
            if not lock.locked() and key not in self._waiting:
                self._locks.pop(key, None)

    def request_later(self, key: Key, delay: float) -> None:
        """A safety-net re-check while an object is still converging."""
        if key in self._later:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._later.pop(key, None)
            task = loop.create_task(self._quiet(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._later[key] = loop.call_later(delay, fire)

    async def _quiet(self, key: Key) -> None:
        # Failures are logged by the run callable; the periodic resync retries.
        with contextlib.suppress(Exception):
            await self.request(key)

    def cancel_all(self) -> None:
        for handle in self._later.values():
            handle.cancel()
        self._later.clear()
