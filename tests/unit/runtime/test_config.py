"""langgraph.json and environment parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from berth_runtime.config import (
    ConfigError,
    load_config,
    parse_config,
    parse_env_file,
    parse_graph_ref,
    settings_from_env,
)


def test_graph_refs_resolve_against_the_config_folder(tmp_path: Path) -> None:
    spec = parse_graph_ref("agent", "./src/agent.py:graph", tmp_path)
    assert spec.path == (tmp_path / "src" / "agent.py").resolve() and spec.attr == "graph"
    assert parse_graph_ref("a", {"path": "./a.py:make"}, tmp_path).attr == "make"
    for bad in ("./agent.py", "agent:graph", ":graph", "./a.py:", 3):
        with pytest.raises(ConfigError):
            parse_graph_ref("agent", bad, tmp_path)


def test_full_config(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "graphs": {"a": "./a.py:g"},
            "env": {"K": 1},
            "dependencies": [".", "./lib", "langchain-openai"],
            "store": {"ttl": {"default_ttl": 10, "sweep_interval_minutes": 2}},
            "checkpointer": {"ttl": {"strategy": "delete", "default_ttl": 60}},
        },
        tmp_path,
    )
    assert cfg.env == {"K": "1"}
    assert cfg.dependencies == (tmp_path.resolve(), (tmp_path / "lib").resolve())
    assert cfg.store_ttl is not None and cfg.store_ttl.default_ttl == 10.0
    assert cfg.checkpointer_ttl is not None and cfg.checkpointer_ttl.default_ttl == 60.0
    assert cfg.checkpointer_ttl.sweep_interval_minutes == 5.0


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"graphs": {}},
        {"graphs": []},
        {"graphs": {"a": "./a.py:g"}, "env": 3},
        {"graphs": {"a": "./a.py:g"}, "dependencies": "."},
        {"graphs": {"a": "./a.py:g"}, "store": {"ttl": {"default_ttl": "soon"}}},
        {"graphs": {"a": "./a.py:g"}, "checkpointer": {"ttl": {"strategy": "forget"}}},
        {"graphs": {"a": "./a.py:g"}, "checkpointer": []},
    ],
)
def test_bad_configs_are_rejected(data: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        parse_config(data, tmp_path)


def test_env_file(tmp_path: Path) -> None:
    text = '# comment\nexport A=1\nB="two words"\nC=3 # trailing\nnot a pair\nD=\n'
    assert parse_env_file(text) == {"A": "1", "B": "two words", "C": "3", "D": ""}
    (tmp_path / ".env").write_text("X=y\n")
    (tmp_path / "langgraph.json").write_text(
        json.dumps({"graphs": {"a": "./a.py:g"}, "env": ".env"})
    )
    assert load_config(tmp_path / "langgraph.json").env == {"X": "y"}


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_config(tmp_path / "bad.json")


def test_settings_defaults_and_overrides() -> None:
    s = settings_from_env({"DATABASE_URI": "postgres://x"})
    assert (s.n_jobs_per_worker, s.bg_job_max_retries, s.port) == (10, 3, 8000)
    assert s.redis_uri is None and s.lease_seconds == 30 and s.heartbeat_seconds == 10
    s = settings_from_env(
        {
            "POSTGRES_URI": "postgres://y",
            "REDIS_URI": "redis://r",
            "N_JOBS_PER_WORKER": "0",
            "BG_JOB_MAX_RETRIES": "5",
            "BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS": "99999",
            "BERTH_LEASE_SECONDS": "3",
            "PORT": "9000",
        }
    )
    assert s.database_uri == "postgres://y" and s.n_jobs_per_worker == 0
    assert s.bg_job_max_retries == 5 and s.shutdown_grace_secs == 3600 and s.port == 9000
    assert s.heartbeat_seconds == 1.0  # a third of the lease unless set


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"DATABASE_URI": "x", "N_JOBS_PER_WORKER": "many"},
        {"DATABASE_URI": "x", "BG_JOB_MAX_RETRIES": "0"},
        {"DATABASE_URI": "x", "BERTH_LEASE_SECONDS": "1", "BERTH_HEARTBEAT_SECONDS": "2"},
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        settings_from_env(env)


def test_auth_objects_are_checked() -> None:
    from berth_runtime.auth.loader import check_auth
    from berth_runtime.auth.middleware import identity_of
    from langgraph_sdk import Auth

    good = Auth()

    @good.authenticate
    async def who(authorization: str | None) -> str:
        return "u"

    assert check_auth(good, "x") is good
    with pytest.raises(ConfigError, match="no @auth"):
        check_auth(Auth(), "x")
    with pytest.raises(ConfigError, match=r"expected a langgraph_sdk\.Auth"):
        check_auth(object(), "x")
    filtering = Auth()
    filtering.authenticate(who)

    @filtering.on
    async def owner_only(ctx: Auth.types.AuthContext, value: dict[str, object]) -> None:
        return None

    assert check_auth(filtering, "x") is filtering  # authorization handlers are supported
    assert identity_of("a") == "a" and identity_of({"identity": "b"}) == "b"
    with pytest.raises(TypeError):
        identity_of({"name": "c"})


def test_auth_path_in_config(tmp_path: Path) -> None:
    cfg = parse_config({"graphs": {"a": "./a.py:g"}, "auth": {"path": "./auth.py:auth"}}, tmp_path)
    assert cfg.auth is not None and cfg.auth.attr == "auth"
    with pytest.raises(ConfigError):
        parse_config({"graphs": {"a": "./a.py:g"}, "auth": "./auth.py:auth"}, tmp_path)
