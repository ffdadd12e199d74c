"""Embedding functions named by path in the test configs (`./embed.py:fn`)."""

from __future__ import annotations

from berth_runtime.store import wordllama


async def embed(texts: list[str]) -> list[list[float]]:
    """The local model, except for a text asking for a wrong-sized vector."""
    vectors = wordllama.embed(texts)
    return [
        [0.5, 0.5, 0.5] if "WRONG DIMS" in t else v for t, v in zip(texts, vectors, strict=True)
    ]


def embed_128(texts: list[str]) -> list[list[float]]:
    """128-dimension vectors: the local model's first half."""
    return [v[:128] for v in wordllama.embed(texts)]
