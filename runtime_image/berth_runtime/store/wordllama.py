"""`berth:wordllama`: a local embedding model whose weights ship inside the `wordllama` wheel.

WordLlama's `l2_supercat` model (256 dimensions) is a token-embedding table taken from an LLM
and trained for sentence similarity: embedding is a tokenizer pass and an average, fast on a
CPU and with no network. The files are read straight from the installed package (its own
`WordLlama.load()` looks for the tokenizer in a folder the wheel does not use and would then
try to download it).
"""

from __future__ import annotations

import threading
from importlib.resources import files
from typing import Any

from langchain_core.embeddings import Embeddings

DIMS = 256
_lock = threading.Lock()
_model: Any = None


def model() -> Any:
    """The WordLlama inference object, loaded once per process from the package's files."""
    global _model
    with _lock:
        if _model is None:
            from safetensors import safe_open
            from tokenizers import Tokenizer
            from wordllama.inference import WordLlamaInference  # type: ignore[import-untyped]

            pkg = files("wordllama")
            weights = str(pkg / "weights" / "l2_supercat_256.safetensors")
            tokenizer = str(pkg / "tokenizers" / "l2_supercat_tokenizer_config.json")
            with safe_open(weights, framework="np", device="cpu") as f:
                table = f.get_tensor("embedding.weight")
            _model = WordLlamaInference(table, Tokenizer.from_file(tokenizer))
        return _model


def embed(texts: list[str]) -> list[list[float]]:
    """Unit-length 256-dimension vectors, one per text."""
    if not texts:
        return []
    vectors = model().embed(list(texts), norm=True)
    return [[float(x) for x in row] for row in vectors]


class WordLlamaEmbeddings(Embeddings):
    """LangChain's Embeddings interface over `embed` (blocking work runs in a thread)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return embed([text])[0]
