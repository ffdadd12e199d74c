"""Assistants as last read by this process, so creating a run need not read its assistant.

A cached copy is only ever used together with its `updated_at`: `berth_enqueue_run` creates
the run only if the assistant row still has that version (every change of an assistant moves
it), and otherwise does nothing, so the caller reads the assistant again. A stale entry costs
one extra round trip, never a run built from an old configuration.
"""

from __future__ import annotations

import uuid
from typing import Any

MAX_ENTRIES = 1024


class AssistantCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._rows: dict[uuid.UUID, dict[str, Any]] = {}
        self._max = max_entries

    def get(self, assistant_id: uuid.UUID) -> dict[str, Any] | None:
        return self._rows.get(assistant_id)

    def put(self, row: dict[str, Any]) -> None:
        key = row["assistant_id"]
        self._rows.pop(key, None)
        if len(self._rows) >= self._max:
            self._rows.pop(next(iter(self._rows)))  # the oldest entry
        self._rows[key] = row

    def drop(self, assistant_id: uuid.UUID) -> None:
        self._rows.pop(assistant_id, None)
