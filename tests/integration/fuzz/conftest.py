"""Runtimes for the fuzz and isolation tests, and the tally of what was sent.

`BERTH_FUZZ_EXAMPLES` (default 3) bounds the cases per operation and phase; `make fuzz` raises
it. `pytest_terminal_summary` prints the tally: cases sent and status classes per variant.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.runtime.conftest import GRAPHS_CONFIG, REPO, RuntimeProcess, launch
from tests.support.servers import Server, create_database

TENANTS_CONFIG = REPO / "tests" / "integration" / "graphs" / "with_auth" / "tenants.json"
# What each test sent: {variant: Counter({"2xx": n, "4xx": n, "5xx": n, "cases": n})}.
TALLY: dict[str, Counter[str]] = defaultdict(Counter)


def fuzz_examples() -> int:
    return int(os.environ.get("BERTH_FUZZ_EXAMPLES", "3"))


def serve(
    postgres: Server,
    redis: Server,
    tmp: Path,
    name: str,
    config: Path = GRAPHS_CONFIG,
    extra_env: dict[str, str] | None = None,
) -> RuntimeProcess:
    db = create_database(postgres.uri, f"{name}_{os.urandom(6).hex()}")
    return launch("serve", db, redis.uri, tmp, config=config, extra_env=extra_env)


@pytest.fixture(scope="module")
def plain_server(
    postgres: Server, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    rp = serve(postgres, redis, tmp_path_factory.mktemp("fuzz"), "fuzz")
    yield rp
    rp.terminate()


@pytest.fixture(scope="module")
def tenant_server(
    postgres: Server, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    rp = serve(postgres, redis, tmp_path_factory.mktemp("tenants"), "tenants", TENANTS_CONFIG)
    yield rp
    rp.terminate()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    terminalreporter.section("berth fuzz tally")
    for variant, counts in sorted(TALLY.items()):
        terminalreporter.write_line(f"{variant}: {json.dumps(dict(sorted(counts.items())))}")
    out = os.environ.get("BERTH_FUZZ_TALLY")
    if out:
        Path(out).write_text(json.dumps({k: dict(v) for k, v in TALLY.items()}, indent=1))
