"""Content hashes of the files an image is built from (the image tags of `make images`).

A tag is the first 12 hex digits of a SHA-256 over each file's relative path, executable
bit and content, in sorted order, plus extra strings (a recipe's settings, its base images'
tags). Caches and bytecode never count, so a test run or an editor does not change a tag.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

IGNORED_DIRS = frozenset(
    {
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".import_linter_cache",
        ".langgraph_api",
        ".git",
        "node_modules",
    }
)
IGNORED_SUFFIXES = (".pyc", ".pyo")
TAG_LENGTH = 12


def collect_files(root: Path, includes: Iterable[str]) -> list[str]:
    """Relative POSIX paths of the files under `root` named by `includes` (files or folders).

    A missing include is an error: an image recipe that names a file which is gone must not
    silently hash (and build) less than it claims.
    """
    found: set[str] = set()
    for include in includes:
        path = root / include
        if path.is_file():
            found.add(Path(include).as_posix())
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"image input {include!r} is missing under {root}")
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
            for name in filenames:
                if name.endswith(IGNORED_SUFFIXES):
                    continue
                found.add((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


def tree_digest(root: Path, files: Sequence[str], extra: Iterable[str] = ()) -> str:
    """SHA-256 (hex) over the files' paths, executable bits and contents, then `extra`."""
    h = hashlib.sha256()
    for rel in sorted(files):
        path = root / rel
        mode = path.stat().st_mode
        executable = "x" if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else "-"
        data = path.read_bytes()
        h.update(f"file {rel} {executable} {len(data)}\n".encode())
        h.update(data)
    for item in extra:
        h.update(f"extra {len(item)}\n{item}".encode())
    return h.hexdigest()


def short_tag(digest: str) -> str:
    return digest[:TAG_LENGTH]
