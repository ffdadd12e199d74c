"""Everything a request handler or a worker needs, built once per process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from berth_runtime.bus import Bus
from berth_runtime.config import BerthConfig, Settings
from berth_runtime.db.assistant_cache import AssistantCache
from berth_runtime.graphs.loader import GraphRegistry


@dataclass
class Runtime:
    settings: Settings
    config: BerthConfig
    pool: AsyncConnectionPool[AsyncConnection[DictRow]]
    checkpointer: Any
    store: Any
    graphs: GraphRegistry
    bus: Bus
    role: str
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    assistants: AssistantCache = field(default_factory=AssistantCache)
    # (loop time when counted, pending runs): BERTH_MAX_PENDING_RUNS reads it (queue.enqueue)
    pending_seen: tuple[float, int] = (-1.0, 0)
