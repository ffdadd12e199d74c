"""The chaos soak, short: runs keep finishing, exactly once in effect, while workers, the API,
Redis and Postgres are killed underneath (the full one is `make soak`, see tests/soak)."""

from __future__ import annotations

import pytest

from tests.soak.soak import Options, soak

pytestmark = pytest.mark.integration


async def test_short_chaos_soak_loses_nothing() -> None:
    rep, faults = await soak(Options(seconds=55, clients=16, workers=4))
    print(f"soak: {rep.line()}\n{faults}")
    assert rep.details == []
    assert (rep.lost, rep.failed, rep.wrong, rep.past_checkpoint) == (0, 0, 0, 0)
    assert rep.runs >= 150 and rep.ok == rep.runs


async def test_the_checker_catches_a_worker_that_does_not_resume_from_its_checkpoint() -> None:
    """The broken variant: re-queued runs start over from their input."""
    opts = Options(
        seconds=20,
        clients=8,
        workers=2,
        kill_worker_every=2.5,
        kill_api_every=1e9,
        restart_redis=False,
        restart_postgres=False,
        break_resume=True,
    )
    rep, faults = await soak(opts)
    print(f"soak (broken): {rep.line()}\n{faults}")
    assert rep.past_checkpoint > 0
    assert rep.wrong > 0
    assert not rep.clean
