"""JSON log records and when tracing turns on (pure: no server, no exporter)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from berth_runtime.telemetry import tracing
from berth_runtime.telemetry.logs import JsonFormatter, bound_run, log_format


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("berth.test", logging.WARNING, __file__, 1, msg, ("x",), None)
    rec.__dict__.update(extra)
    return rec


def test_json_record_carries_the_bound_run_and_extra_fields() -> None:
    fmt = JsonFormatter()
    with bound_run("run-1", "thread-1"):
        out = json.loads(fmt.format(record("hello %s", attempt=2)))
    assert out["message"] == "hello x" and out["level"] == "WARNING"
    assert out["logger"] == "berth.test"
    assert (out["run_id"], out["thread_id"], out["attempt"]) == ("run-1", "thread-1", 2)
    assert out["ts"].endswith("+00:00")
    outside = json.loads(fmt.format(record("later %s")))
    assert "run_id" not in outside and "thread_id" not in outside


def test_bound_run_follows_tasks_started_inside_it() -> None:
    fmt = JsonFormatter()

    async def main() -> dict[str, str]:
        with bound_run("r", "t"):
            task = asyncio.create_task(asyncio.sleep(0, fmt.format(record("in task %s"))))
        return json.loads(await task)

    assert asyncio.run(main())["run_id"] == "r"


def test_json_record_keeps_the_traceback() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = json.loads(JsonFormatter().format(rec))
    assert "ValueError: bad" in out["exc_info"]


def test_log_format_from_env() -> None:
    assert log_format({}) == "text"
    assert log_format({"BERTH_LOG_FORMAT": "JSON"}) == "json"
    with pytest.raises(ValueError, match="BERTH_LOG_FORMAT"):
        log_format({"BERTH_LOG_FORMAT": "yaml"})


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_only_with_an_otlp_endpoint(env: dict[str, str], on: bool) -> None:
    assert tracing.tracing_enabled(env) is on


def test_tracing_off_creates_no_span() -> None:
    assert tracing.setup_tracing({}) is None
    run = {"run_id": "r", "thread_id": "t", "assistant_id": "a", "attempt": 1, "kwargs": {}}
    assert tracing.start_run_span(run) is None
