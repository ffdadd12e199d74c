"""`store.index` validation, embeddings loading and the local `berth:wordllama` model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from berth_runtime.config import ConfigError, embed_kind, parse_config, parse_store_index
from berth_runtime.store import wordllama
from berth_runtime.store.embeddings import EmbeddingDimensionError, load_embeddings


def config_with(index: Any) -> dict[str, Any]:
    return {"graphs": {"a": "./a.py:graph"}, "store": {"index": index}}


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ({"embed": "berth:wordllama"}, "store.index.dims is required"),
        ({"dims": 0, "embed": "berth:wordllama"}, "store.index.dims must be a positive integer"),
        ({"dims": -3, "embed": "berth:wordllama"}, "store.index.dims must be a positive integer"),
        ({"dims": "256", "embed": "berth:wordllama"}, "store.index.dims must be a positive"),
        ({"dims": True, "embed": "berth:wordllama"}, "store.index.dims must be a positive"),
        ({"dims": 20000, "embed": "berth:wordllama"}, "store.index.dims must be at most 16000"),
        ({"dims": 256}, "store.index.embed is required"),
        ({"dims": 256, "embed": "nosuchai:model-1"}, "unknown embeddings provider 'nosuchai'"),
        ({"dims": 256, "embed": "berth:bert"}, "unknown Berth model 'bert'"),
        ({"dims": 256, "embed": "text-embedding-3-small"}, "store.index.embed must be"),
        ({"dims": 256, "embed": "berth:wordllama", "fields": "text"}, "store.index.fields"),
        ({"dims": 256, "embed": "berth:wordllama", "fields": []}, "store.index.fields"),
        ("yes", "'store.index' must be an object"),
    ],
)
def test_bad_store_index_names_the_field(index: Any, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_config(config_with(index), tmp_path)


def test_good_store_index_defaults_fields_to_the_whole_value(tmp_path: Path) -> None:
    config = parse_config(config_with({"dims": 256, "embed": "berth:wordllama"}), tmp_path)
    assert config.store_index == {"dims": 256, "embed": "berth:wordllama", "fields": ["$"]}
    index = {"dims": 1536, "embed": "openai:text-embedding-3-small", "fields": ["a", "b.c"]}
    assert parse_store_index(index) == index


@pytest.mark.parametrize(
    ("embed", "kind"),
    [
        ("openai:text-embedding-3-small", "provider"),
        ("berth:wordllama", "berth"),
        ("./src/embed.py:embed", "file"),
        ("my_pkg.embeddings:embed", "module"),
    ],
)
def test_embed_kinds(embed: str, kind: str) -> None:
    assert embed_kind(embed) == kind


def test_functions_by_path_and_module_are_loaded_and_checked(tmp_path: Path) -> None:
    (tmp_path / "emb.py").write_text(
        "def three(texts):\n    return [[1.0, 0.0, float(len(t))] for t in texts]\n"
    )
    emb = load_embeddings({"dims": 3, "embed": "./emb.py:three"}, tmp_path)
    assert emb.embed_documents(["ab", "c"]) == [[1.0, 0.0, 2.0], [1.0, 0.0, 1.0]]
    wrong = load_embeddings({"dims": 4, "embed": "./emb.py:three"}, tmp_path)
    with pytest.raises(EmbeddingDimensionError, match=r"3 dimensions, but store\.index\.dims is 4"):
        wrong.embed_query("x")
    by_module = load_embeddings(
        {"dims": 256, "embed": "berth_runtime.store.wordllama:embed"}, tmp_path
    )
    assert len(by_module.embed_query("hello")) == 256
    with pytest.raises(ConfigError, match=r"missing\.py: no such Python file"):
        load_embeddings({"dims": 3, "embed": "./missing.py:fn"}, tmp_path)
    with pytest.raises(ConfigError, match="cannot be loaded"):
        load_embeddings({"dims": 3, "embed": "./emb.py:nothing_here"}, tmp_path)


def test_wordllama_runs_from_the_wheel_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model's weights and tokenizer are files of the installed package: loading it must
    not reach the network (any attempt fails here)."""

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("wordllama tried the network")

    monkeypatch.setattr("socket.socket.connect", no_network)
    monkeypatch.setattr(wordllama, "_model", None)
    cats, dogs, stocks = wordllama.embed(
        ["kittens purring on the sofa", "a cat asleep in the sun", "stock prices fell sharply"]
    )
    assert len(cats) == wordllama.DIMS == 256
    assert math.isclose(sum(x * x for x in cats), 1.0, rel_tol=1e-4)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(cats, dogs) > cosine(cats, stocks) + 0.2


def test_provider_strings_go_through_langchain_init_embeddings(tmp_path: Path) -> None:
    """`openai:...` is LangChain's `init_embeddings`; without its package installed the
    error says which package (nothing is sent anywhere)."""
    try:
        import langchain_openai  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="langchain-openai"):
            load_embeddings({"dims": 1536, "embed": "openai:text-embedding-3-small"}, tmp_path)
    else:  # pragma: no cover - the package is not one of Berth's dependencies
        pytest.skip("langchain-openai is installed here")
