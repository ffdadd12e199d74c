"""CORS options from `http.cors` and CORS_ALLOW_ORIGINS (pure parsing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from berth_runtime.config import ConfigError, parse_config
from berth_runtime.cors import EXPOSED, cors_options

GRAPHS = {"graphs": {"g": "./g.py:graph"}}


def test_default_allows_every_origin_and_exposes_resume_headers() -> None:
    opts = cors_options(None, {})
    assert opts["allow_origins"] == ["*"] and opts["allow_credentials"] is False
    assert opts["allow_headers"] == ["*"] and opts["allow_methods"] == ["*"]
    assert opts["expose_headers"] == list(EXPOSED)


def test_env_origins_allow_credentials() -> None:
    opts = cors_options(None, {"CORS_ALLOW_ORIGINS": "https://a.example, https://b.example"})
    assert opts["allow_origins"] == ["https://a.example", "https://b.example"]
    assert opts["allow_credentials"] is True


def test_http_cors_from_langgraph_json_overrides(tmp_path: Path) -> None:
    raw = {
        "allow_origins": ["https://ui.example"],
        "allow_methods": ["GET", "POST"],
        "expose_headers": ["X-Custom", "location"],
        "max_age": 600,
        "allow_credentials": True,
    }
    cfg = parse_config({**GRAPHS, "http": {"cors": raw}}, tmp_path)
    opts = cors_options(cfg.http_cors, {})
    assert opts["allow_origins"] == ["https://ui.example"]
    assert opts["allow_methods"] == ["GET", "POST"]
    assert opts["max_age"] == 600 and opts["allow_credentials"] is True
    # what the SDKs need to resume stays exposed, without duplicating `location`
    assert opts["expose_headers"] == [
        "X-Custom",
        "location",
        "Content-Location",
        "X-Pagination-Total",
        "X-Pagination-Next",
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("*", "must be an object"),
        ({"allow_origins": "*"}, "allow_origins must be a list of strings"),
        ({"allow_origin": ["*"]}, "unknown option(s) allow_origin"),
        ({"allow_credentials": "yes"}, "allow_credentials must be true or false"),
        ({"max_age": -1}, "max_age must be a non-negative integer"),
        ({"allow_origin_regex": 3}, "allow_origin_regex must be a string"),
    ],
)
def test_bad_http_cors_is_rejected_clearly(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cors_options(raw, {})


def test_http_must_be_an_object(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'http' must be an object"):
        parse_config({**GRAPHS, "http": []}, tmp_path)
