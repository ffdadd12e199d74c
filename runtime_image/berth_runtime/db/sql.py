"""Named SQL: `.sql` files hold blocks that start with `-- name: <name>`.

Keeping queries in SQL files lets them be read, reviewed and explained as SQL; this module only
splits the files and hands the text out by name.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")


class QueryNotFound(KeyError):
    """A query name that no `.sql` file declares."""


def parse_named_queries(text: str) -> dict[str, str]:
    """Split one `.sql` text into {name: statement}; text before the first name is a preamble."""
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if name is not None:
            body = "\n".join(lines).strip().rstrip(";").strip()
            if not body:
                raise ValueError(f"query {name!r} is empty")
            queries[name] = body

    for line in text.splitlines():
        match = _NAME.match(line.strip())
        if match:
            flush()
            name = match.group(1)
            if name in queries:
                raise ValueError(f"query {name!r} is declared twice")
            lines = []
        elif name is not None:
            lines.append(line)
    flush()
    return queries


@cache
def _all_queries() -> dict[str, str]:
    found: dict[str, str] = {}
    folder = resources.files("berth_runtime.db") / "queries"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            for name, body in parse_named_queries(entry.read_text()).items():
                if name in found:
                    raise ValueError(f"query {name!r} is declared in two files")
                found[name] = body
    return found


def query(name: str) -> str:
    """The SQL text of a named query."""
    try:
        return _all_queries()[name]
    except KeyError:
        raise QueryNotFound(name) from None


def migration_files() -> list[tuple[int, str, str]]:
    """(version, filename, sql) for every `migrations/NNNN_*.sql`, in version order."""
    folder = resources.files("berth_runtime.db") / "migrations"
    out: list[tuple[int, str, str]] = []
    for entry in folder.iterdir():
        version = parse_migration_version(entry.name)
        if version is not None:
            out.append((version, entry.name, entry.read_text()))
    out.sort()
    versions = [v for v, _, _ in out]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions: {versions}")
    return out


def parse_migration_version(filename: str) -> int | None:
    """`0003_add_x.sql` -> 3; anything else -> None."""
    match = re.fullmatch(r"(\d+)_[A-Za-z0-9_]+\.sql", filename)
    return int(match.group(1)) if match else None
