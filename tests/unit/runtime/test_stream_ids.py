"""Last-Event-ID values a run join-stream accepts."""

from __future__ import annotations

import pytest
from berth_runtime.streams.reader import check_stream_id
from fastapi import HTTPException


def test_redis_ids_pass_and_minus_one_means_from_the_start() -> None:
    assert check_stream_id("1796283892525-0") == "1796283892525-0"
    assert check_stream_id(None) is None
    assert check_stream_id("-1") is None  # what useStream sends to replay a run on reconnect


@pytest.mark.parametrize("bad", ["", "abc", "-2", "12", "1-2-3", "$"])
def test_other_ids_are_a_422(bad: str) -> None:
    with pytest.raises(HTTPException) as err:
        check_stream_id(bad)
    assert err.value.status_code == 422
