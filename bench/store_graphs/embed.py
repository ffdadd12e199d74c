"""The bench's embedding function for `langgraph dev`: Berth's local model (`berth:wordllama`,
WordLlama's weights shipped in its wheel), so both servers rank with the same vectors."""

from __future__ import annotations

import sys
from pathlib import Path

_RUNTIME = Path(__file__).resolve().parents[2] / "runtime_image"
if not (_RUNTIME / "berth_runtime").is_dir():  # langgraph dev runs a copy of this folder
    import os

    _RUNTIME = Path(os.environ["BERTH_RUNTIME_SRC"])
if str(_RUNTIME) not in sys.path:
    sys.path.insert(0, str(_RUNTIME))

from berth_runtime.store.wordllama import embed as _embed  # noqa: E402


def embed(texts: list[str]) -> list[list[float]]:
    return _embed(texts)
