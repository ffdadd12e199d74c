"""The integration tier's Postgres and Redis are real servers, not fakes."""

from __future__ import annotations

import psycopg
import pytest
import redis as redis_lib

from tests.support.servers import Server, postgres_server

pytestmark = pytest.mark.integration


def test_postgres_is_a_real_server(database_uri: str) -> None:
    with psycopg.connect(database_uri) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None and int(version[0].split(".")[0]) >= 14
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO t VALUES (1)")


def test_each_test_gets_its_own_database(database_uri: str, postgres: Server) -> None:
    with psycopg.connect(database_uri) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)


def test_redis_is_a_real_server(redis: Server) -> None:
    client = redis_lib.Redis.from_url(redis.uri)
    client.xadd("s", {"k": "v"})
    assert client.xlen("s") == 1
    info = client.info("server")
    assert info["tcp_port"] == redis.port


def test_postgres_server_is_torn_down() -> None:
    with postgres_server() as server:
        proc = server.proc
        assert proc.poll() is None
    assert proc.poll() is not None
    assert not server.workdir.exists()
