"""Structured logs: one JSON object per line, carrying the run and thread being worked on.

The worker binds `run_id` and `thread_id` to context variables for the duration of a run, so
every log record emitted while executing it (Berth's, LangGraph's, the graph's own `logging`
calls) carries them, without passing them around. `BERTH_LOG_FORMAT=json` turns it on (the
container image sets it); the default stays the human-readable line format.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import orjson

run_id_var: ContextVar[str | None] = ContextVar("berth_run_id", default=None)
thread_id_var: ContextVar[str | None] = ContextVar("berth_thread_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# LogRecord attributes that are not user `extra=` fields.
_RESERVED = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


@contextlib.contextmanager
def bound_run(run_id: str, thread_id: str) -> Iterator[None]:
    """Tag every log record emitted inside the block (and tasks it starts) with the run."""
    run_token = run_id_var.set(run_id)
    thread_token = thread_id_var.set(thread_id)
    try:
        yield
    finally:
        run_id_var.reset(run_token)
        thread_id_var.reset(thread_token)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "run_id", "thread_id", ...extra, "exc_info"}`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id, thread_id = run_id_var.get(), thread_id_var.get()
        if run_id is not None:
            out["run_id"] = run_id
        if thread_id is not None:
            out["thread_id"] = thread_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=repr).decode()


def log_format(env: Mapping[str, str]) -> str:
    """`json` or `text`, from BERTH_LOG_FORMAT (anything else is a configuration error)."""
    value = (env.get("BERTH_LOG_FORMAT") or "text").strip().lower()
    if value not in ("json", "text"):
        raise ValueError(f"BERTH_LOG_FORMAT must be 'json' or 'text', got {value!r}")
    return value


def configure_logging(env: Mapping[str, str]) -> str:
    """Set up the root logger from the environment; returns the format chosen."""
    fmt = log_format(env)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(env.get("LOG_LEVEL", "INFO").upper())
    return fmt
