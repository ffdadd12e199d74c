"""Load the embeddings `store.index.embed` names, checked against `store.index.dims`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from berth_runtime.config import ConfigError, embed_kind


class EmbeddingDimensionError(ValueError):
    """An embedding has another size than `store.index.dims`: pgvector could not store it."""


class CheckedEmbeddings(Embeddings):
    """Wraps the configured embeddings; a vector of the wrong size raises a clear error."""

    def __init__(self, inner: Embeddings, dims: int, name: str) -> None:
        self.inner = inner
        self.dims = dims
        self.name = name

    def _check(self, vectors: list[list[float]]) -> list[list[float]]:
        for vector in vectors:
            if len(vector) != self.dims:
                raise EmbeddingDimensionError(
                    f"store.index.embed {self.name!r} returned a vector of {len(vector)} "
                    f"dimensions, but store.index.dims is {self.dims}"
                )
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._check(self.inner.embed_documents(texts))

    def embed_query(self, text: str) -> list[float]:
        return self._check([self.inner.embed_query(text)])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._check(await self.inner.aembed_documents(texts))

    async def aembed_query(self, text: str) -> list[float]:
        return self._check([await self.inner.aembed_query(text)])[0]


def _import_file(path: Path, attr: str, extra_paths: tuple[Path, ...]) -> Any:
    for p in (path.parent, *extra_paths):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    name = f"berth_embed_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.exists():
        raise ConfigError(f"store.index.embed: cannot load {path}: no such Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return getattr(module, attr)


def load_embeddings(
    index: dict[str, Any], base_dir: Path, extra_paths: tuple[Path, ...] = ()
) -> CheckedEmbeddings:
    """The Embeddings for `store.index`; ConfigError says what is wrong with `embed`."""
    embed = str(index["embed"])
    dims = int(index["dims"])
    kind = embed_kind(embed)
    left, _, right = embed.rpartition(":")
    obj: Any
    try:
        if kind == "berth":
            from berth_runtime.store.wordllama import WordLlamaEmbeddings

            obj = WordLlamaEmbeddings()
        elif kind == "provider":
            from langchain.embeddings import init_embeddings

            obj = init_embeddings(embed)
        elif kind == "file":
            obj = _import_file((base_dir / left).resolve(), right, extra_paths)
        else:
            obj = getattr(importlib.import_module(left), right)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"store.index.embed {embed!r} cannot be loaded: {e}") from e
    if isinstance(obj, Embeddings):
        inner = obj
    elif callable(obj):
        from langgraph.store.base.embed import ensure_embeddings

        inner = ensure_embeddings(obj)
    else:
        raise ConfigError(
            f"store.index.embed {embed!r} must name a function (texts -> vectors) or an "
            f"Embeddings object, got {type(obj).__name__}"
        )
    return CheckedEmbeddings(inner, dims, embed)
