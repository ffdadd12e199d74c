"""Fixtures shared by every test tier: real Postgres and Redis servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.servers import Server, create_database, postgres_server, redis_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """One real Postgres server for the test session."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis() -> Iterator[Server]:
    """One real Redis server for the test session."""
    with redis_server() as server:
        yield server


@pytest.fixture
def database_uri(postgres: Server) -> str:
    """A fresh, empty database for one test."""
    return create_database(postgres.uri, f"t_{uuid.uuid4().hex[:12]}")
