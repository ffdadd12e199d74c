"""Sandbox settings and the provider's scoping and idle-TTL logic (no servers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from berth_runtime.config import ConfigError, parse_config
from berth_runtime.sandbox.backend import ExecutorUnreachable
from berth_runtime.sandbox.provider import SandboxProvider, resolver_for
from berth_runtime.sandbox.resolvers import (
    Bound,
    SandboxUnavailable,
    ScopeKey,
    executor_url,
    parse_rfc3339,
    rfc3339,
    scope_key,
)
from berth_runtime.sandbox.scoped import ScopedSandboxBackend, current_backend
from berth_runtime.sandbox.settings import SandboxSettings, parse_sandbox, with_env

from tests.support.servers import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A resolver that hands out numbered sandboxes and records what it is given back."""

    def __init__(self, url: str = "http://127.0.0.1:1", delay: float = 0.0) -> None:
        self.url, self.delay = url, delay
        self.acquired: list[ScopeKey] = []
        self.released: list[str] = []
        self.any_released = asyncio.Event()
        self.touches: list[tuple[ScopeKey, float]] = []
        self.activity: dict[ScopeKey, float] = {}  # shared by every "replica" using it

    async def acquire(self, key: ScopeKey) -> Bound:
        await asyncio.sleep(self.delay)
        self.acquired.append(key)
        return Bound(self.url, "t", f"sb-{len(self.acquired)}", key)

    async def release(self, bound: Bound) -> None:
        self.released.append(bound.sandbox_id)
        self.any_released.set()

    async def touch(self, bound: Bound, at: float) -> None:
        self.touches.append((bound.handle, at))
        self.activity[bound.handle] = max(at, self.activity.get(bound.handle, at))

    async def last_activity(self, bound: Bound) -> float | None:
        return self.activity.get(bound.handle)


def run_config(thread: str, assistant: str = "a1") -> dict[str, object]:
    return {"configurable": {"thread_id": thread, "assistant_id": assistant}}


def provider(
    scope: str = "thread",
    ttl: float = 60.0,
    resolver: Recorder | None = None,
    clock: Clock | None = None,
) -> tuple[SandboxProvider, Recorder, Clock]:
    rec, clock = resolver or Recorder(), clock or Clock()
    settings = parse_sandbox({"pool": "p", "scope": scope, "ttlSeconds": ttl})
    return SandboxProvider(settings, rec, clock, wall=clock, auto_reap=False), rec, clock


async def settle() -> None:
    """Let background activity records run."""
    for _ in range(5):
        await asyncio.sleep(0)


# -- settings --------------------------------------------------------------------------------


def test_langgraph_json_sandbox_key() -> None:
    s = parse_sandbox(
        {"pool": "py", "scope": "assistant", "ttlSeconds": 90, "readyTimeoutSeconds": 5}
    )
    assert (s.pool, s.scope, s.ttl_seconds, s.ready_timeout_seconds) == ("py", "assistant", 90, 5)
    assert s.enabled and not s.static
    assert not parse_sandbox(None).enabled
    assert parse_sandbox({"pool": "py"}).scope == "thread"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be an object"),
        ({"pool": "p", "scope": "run"}, "'thread' or 'assistant'"),
        ({"pool": "p", "ttlSeconds": 0}, "positive number"),
        ({"pool": "p", "ttlSeconds": True}, "positive number"),
        ({"pool": ""}, "non-empty string"),
        ({"pool": "p", "ttl": 5}, "unknown key(s) in 'sandbox': ttl"),
    ],
)
def test_bad_sandbox_key_names_the_problem(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_sandbox(raw)


def test_bad_sandbox_key_stops_parse_config(tmp_path: Path) -> None:
    data = {"graphs": {"a": "./a.py:g"}, "sandbox": {"pool": "p", "scope": "x"}}
    with pytest.raises(ConfigError, match=r"sandbox\.scope"):
        parse_config(data, tmp_path)
    ok = parse_config({"graphs": {"a": "./a.py:g"}, "sandbox": {"pool": "p"}}, tmp_path)
    assert ok.sandbox == {"pool": "p"}


def test_environment_wins_over_langgraph_json() -> None:
    base = parse_sandbox({"pool": "from-json", "scope": "thread", "ttlSeconds": 100})
    env = {
        "BERTH_SANDBOX_POOL": "from-env",
        "BERTH_SANDBOX_SCOPE": "assistant",
        "BERTH_SANDBOX_TTL_SECONDS": "7.5",
        "POD_NAMESPACE": "agents",
    }
    s = with_env(base, env)
    assert (s.pool, s.scope, s.ttl_seconds, s.namespace) == ("from-env", "assistant", 7.5, "agents")
    assert with_env(base, {}) == base
    assert with_env(base, {"BERTH_SANDBOX_NAMESPACE": "x", "POD_NAMESPACE": "y"}).namespace == "x"
    # The AgentDeployment's name (the operator sets it) goes into new claims' deploymentRef.
    assert base.deployment is None
    assert with_env(base, {"BERTH_DEPLOYMENT_NAME": "agent"}).deployment == "agent"


def test_static_endpoint_needs_a_token_and_a_url() -> None:
    s = with_env(SandboxSettings(), {"BERTH_SANDBOX_URL": "http://h:1", "BERTH_SANDBOX_TOKEN": "k"})
    assert s.static and s.enabled and isinstance(resolver_for(s), object)
    with pytest.raises(ConfigError, match="BERTH_SANDBOX_TOKEN"):
        with_env(SandboxSettings(), {"BERTH_SANDBOX_URL": "http://h:1"})
    with pytest.raises(ConfigError, match="http"):
        with_env(SandboxSettings(), {"BERTH_SANDBOX_URL": "h:1", "BERTH_SANDBOX_TOKEN": "k"})
    with pytest.raises(ConfigError, match="BERTH_SANDBOX_TTL_SECONDS"):
        with_env(SandboxSettings(), {"BERTH_SANDBOX_TTL_SECONDS": "soon"})
    assert resolver_for(SandboxSettings()) is None


def test_executor_url_brackets_ipv6() -> None:
    assert executor_url("10.1.2.3") == "http://10.1.2.3:8790"
    assert executor_url("fd00::5") == "http://[fd00::5]:8790"


# -- scoping ---------------------------------------------------------------------------------


def test_scope_key_reads_the_run_config() -> None:
    assert scope_key("thread", run_config("t1")) == ScopeKey("thread", "t1")
    assert scope_key("assistant", run_config("t1", "asst")) == ScopeKey("assistant", "asst")
    with pytest.raises(SandboxUnavailable, match="thread_id"):
        scope_key("thread", {"configurable": {}})


async def test_thread_scope_one_sandbox_per_thread() -> None:
    p, rec, _ = provider("thread")
    ids = []
    for thread in ("t1", "t2", "t1", "t2", "t1"):
        async with p.use(p.key_for(run_config(thread))) as backend:
            ids.append(backend.id)
    assert ids == ["sb-1", "sb-2", "sb-1", "sb-2", "sb-1"]
    assert rec.acquired == [ScopeKey("thread", "t1"), ScopeKey("thread", "t2")]


async def test_assistant_scope_shares_one_sandbox_across_threads() -> None:
    p, rec, _ = provider("assistant")
    for thread in ("t1", "t2", "t3"):
        async with p.use(p.key_for(run_config(thread, "asst-1"))) as backend:
            assert backend.id == "sb-1"
    async with p.use(p.key_for(run_config("t1", "asst-2"))) as backend:
        assert backend.id == "sb-2"
    assert [k.value for k in rec.acquired] == ["asst-1", "asst-2"]


async def test_concurrent_first_uses_lease_once() -> None:
    p, rec, _ = provider(resolver=Recorder(delay=0.05))
    key = p.key_for(run_config("t1"))

    async def one() -> str:
        async with p.use(key) as backend:
            return backend.id

    assert set(await asyncio.gather(*(one() for _ in range(20)))) == {"sb-1"}
    assert len(rec.acquired) == 1


async def test_no_sandbox_configured_is_a_clear_error() -> None:
    p = SandboxProvider(SandboxSettings(), None, auto_reap=False)
    with pytest.raises(SandboxUnavailable, match="BERTH_SANDBOX_POOL"):
        p.key_for(run_config("t1"))


# -- idle TTL --------------------------------------------------------------------------------


async def test_idle_lease_released_after_ttl_and_replaced_on_next_use() -> None:
    p, rec, clock = provider(ttl=60)
    key = p.key_for(run_config("t1"))
    async with p.use(key):
        pass
    clock.now += 59
    assert await p.reap() == [] and rec.released == []
    async with p.use(key):  # use refreshes the idle clock
        pass
    clock.now += 59
    assert await p.reap() == []
    clock.now += 1
    assert await p.reap() == [key]
    assert rec.released == ["sb-1"] and p.leased() == {}
    async with p.use(key) as backend:
        assert backend.id == "sb-2"


async def test_busy_lease_is_never_reaped() -> None:
    p, rec, clock = provider(ttl=10)
    key = p.key_for(run_config("t1"))
    other = p.key_for(run_config("t2"))
    async with p.use(other):
        pass
    async with p.use(key):
        clock.now += 3600  # a long command
        assert await p.reap() == [other]
        await settle()
        assert rec.touches[-1] == (key, clock.now)  # still active, for the pool's idleTimeout
    assert rec.released == ["sb-1"]  # t2 (leased first, sb-1) idle; t1 (sb-2) in use
    clock.now += 9
    assert await p.reap() == []
    clock.now += 1
    assert await p.reap() == [key]


async def test_activity_is_shared_at_most_every_tenth_of_the_ttl() -> None:
    p, rec, clock = provider(ttl=60)
    key = p.key_for(run_config("t1"))
    for _ in range(10):  # a burst of calls: one record
        async with p.use(key):
            clock.now += 0.5
    await settle()
    assert rec.touches == [(key, 1000.0)]
    clock.now += 6
    async with p.use(key):
        pass
    await settle()
    assert [at for _, at in rec.touches] == [1000.0, 1011.0]
    assert rfc3339(1011.0) == "1970-01-01T00:16:51.000000Z"
    assert parse_rfc3339(rfc3339(1011.25)) == 1011.25 and parse_rfc3339("soon") is None


async def test_a_sandbox_another_replica_uses_is_not_released() -> None:
    """A thread's runs moved from replica A to B: A's lease idles, B's is busy."""
    shared, clock = Recorder(), Clock()
    a, _, _ = provider(ttl=60, resolver=shared, clock=clock)
    b, _, _ = provider(ttl=60, resolver=shared, clock=clock)
    key = a.key_for(run_config("t1"))
    async with a.use(key):
        pass
    clock.now += 50
    async with b.use(key):
        pass
    await settle()
    clock.now += 20  # A idle 70 s, but B used it 20 s ago
    assert await a.reap() == [] and shared.released == []
    clock.now += 39  # B's use is 59 s old: still kept, by both
    assert await a.reap() == [] and await b.reap() == []
    clock.now += 1
    assert await b.reap() == [key] and await a.reap() == [key]
    assert shared.released == ["sb-2", "sb-1"]


async def test_background_reaper_releases_idle_sandboxes() -> None:
    rec = Recorder()
    settings = parse_sandbox({"pool": "p", "ttlSeconds": 0.2})
    p = SandboxProvider(settings, rec)  # real clock, reaper started on first use
    async with p.use(p.key_for(run_config("t1"))):
        pass
    await asyncio.wait_for(rec.any_released.wait(), 30)
    await p.aclose()
    assert rec.released == ["sb-1"]


# -- the scoped backend ----------------------------------------------------------------------


async def test_vanished_sandbox_is_released_and_leased_again_once() -> None:
    rec = Recorder(url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    p, _, _ = provider(resolver=rec)
    backend = current_backend(run_config("t1"))
    assert isinstance(backend, ScopedSandboxBackend)
    with pytest.raises(ExecutorUnreachable):
        await ScopedSandboxBackend(p, run_config("t1")).aexecute("true")
    assert len(rec.acquired) == 2 and rec.released == ["sb-1"]
    assert p.leased() == {ScopeKey("thread", "t1"): "sb-2"}


async def test_outside_a_run_the_backend_says_how_to_use_it() -> None:
    p, _, _ = provider()
    with pytest.raises(SandboxUnavailable, match="outside a run"):
        await ScopedSandboxBackend(p).als("/")
    assert ScopedSandboxBackend(p).id == "berth-sandbox"
    assert ScopedSandboxBackend(p, run_config("t9")).id == "berth-sandbox:thread:t9"


def test_sync_api_runs_on_the_provider_loop_from_a_worker_thread() -> None:
    rec = Recorder(url=f"http://127.0.0.1:{free_port()}")
    p, _, _ = provider(resolver=rec)
    with pytest.raises(ExecutorUnreachable):
        ScopedSandboxBackend(p, run_config("t1")).execute("true")  # no loop: a private one
    assert len(rec.acquired) == 2


async def test_sync_api_on_the_event_loop_goes_straight_to_a_leased_sandbox() -> None:
    rec = Recorder(url=f"http://127.0.0.1:{free_port()}")
    p, _, _ = provider(resolver=rec)
    other = ScopedSandboxBackend(p, run_config("t0"))
    async with p.use(p.key_for(run_config("t1"))):
        pass
    with pytest.raises(RuntimeError, match="before the sandbox was leased"):
        other.ls("/")  # would need the loop it is blocking to lease one
    with pytest.raises(ExecutorUnreachable):  # the leased executor's own sync client was used
        ScopedSandboxBackend(p, run_config("t1")).ls("/")
    assert len(rec.acquired) == 1
