"""Named fault points, so tests can stop a process exactly where a crash would hurt.

`await point("cron.after_claim")` does nothing unless a test registered a hook for that name
(`hooks`, in-process) or the process was started with `BERTH_FAULTS=<name>:exit` (it then
ends at once with status 137, as a SIGKILL would leave it: no cleanup, no `finally`). Kept
in production code on purpose: a lookup in an empty dict costs nothing, and the crash tests
need no sleeps to hit the window.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

hooks: dict[str, Callable[[], Awaitable[None]]] = {}


def _from_env() -> set[str]:
    raw = os.environ.get("BERTH_FAULTS", "")
    return {p.split(":", 1)[0] for p in raw.split(",") if p.endswith(":exit")}


_EXIT_AT = _from_env()


async def point(name: str) -> None:
    """A place where a crash is worth testing."""
    if name in _EXIT_AT:
        os._exit(137)
    hook = hooks.get(name)
    if hook is not None:
        await hook()
