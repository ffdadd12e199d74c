"""Last-Event-ID values a run join-stream and a thread join-stream accept."""

from __future__ import annotations

import uuid

import pytest
from berth_runtime.api.thread_stream import parse_thread_event_id
from berth_runtime.streams.reader import FOREIGN, check_stream_id
from fastapi import HTTPException


def test_redis_ids_pass_and_minus_one_means_from_the_start() -> None:
    assert check_stream_id("1796283892525-0") == "1796283892525-0"
    assert check_stream_id(None) is None
    assert check_stream_id("-1") is None  # what useStream sends to replay a run on reconnect


@pytest.mark.parametrize("other", ["", "abc", "-2", "12", "1-2-3", "$", str(uuid.uuid4())])
def test_an_id_of_another_stream_is_no_error(other: str) -> None:
    """As the Agent Server: what is buffered is skipped, the stream goes on (no 422)."""
    assert check_stream_id(other) == FOREIGN


def test_thread_stream_ids() -> None:
    rid = uuid.uuid4()
    assert parse_thread_event_id(None) is None
    assert parse_thread_event_id("-1") is None
    assert parse_thread_event_id(f"{rid}/1796283892525-3") == (rid, "1796283892525-3")
    # the Agent Server's own form: a bare Redis stream id
    assert parse_thread_event_id("1796283892525-3") == (None, "1796283892525-3")


@pytest.mark.parametrize("bad", ["abc", str(uuid.uuid4()), "x/1-0", f"{uuid.uuid4()}/abc"])
def test_thread_stream_refuses_what_is_no_event_id(bad: str) -> None:
    with pytest.raises(HTTPException) as err:
        parse_thread_event_id(bad)
    assert err.value.status_code == 422
