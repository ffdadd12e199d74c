"""The scheduler's time source: the system clock, or one tests can move.

`BERTH_CRON_CLOCK_OFFSET_FILE` (tests only) names a file holding either a number of seconds
added to the system time, or `@<ISO timestamp>`: a frozen time. A test writes "the next tick
plus a second" there to make it due at once instead of waiting a minute. Integration tests
inject a `ManualClock` in-process instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

OFFSET_FILE_ENV = "BERTH_CRON_CLOCK_OFFSET_FILE"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class OffsetFileClock:
    """System time plus the seconds written in `path`, or the frozen `@<timestamp>` there
    (the system time while the file is missing, empty or unreadable)."""

    path: Path

    def _text(self) -> str:
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def offset(self) -> float:
        text = self._text()
        try:
            return float(text) if text and not text.startswith("@") else 0.0
        except ValueError:
            return 0.0

    def now(self) -> datetime:
        text = self._text()
        if text.startswith("@"):
            try:
                return datetime.fromisoformat(text[1:].replace("Z", "+00:00")).astimezone(UTC)
            except ValueError:
                pass
        return datetime.now(UTC) + timedelta(seconds=self.offset())


@dataclass
class ManualClock:
    """A clock that moves only when told (tests)."""

    current: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when


def clock_from_env(env: Mapping[str, str]) -> Clock:
    path = env.get(OFFSET_FILE_ENV)
    return OffsetFileClock(Path(path)) if path else SystemClock()
