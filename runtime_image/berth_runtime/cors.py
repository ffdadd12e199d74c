"""CORS for browser clients (the React `useStream` hook, Studio) served from another origin.

`http.cors` in langgraph.json takes Starlette's CORSMiddleware options, as the Agent Server
does. Without it every origin may call the API (it authenticates by header, not by cookie),
or the comma-separated origins of `CORS_ALLOW_ORIGINS`. The headers the SDKs read to resume
a stream (`Location`, `Content-Location`) and to page (`X-Pagination-*`) are always exposed,
or a browser client could not reconnect to a run it started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth_runtime.config import ConfigError

EXPOSED = ("Location", "Content-Location", "X-Pagination-Total", "X-Pagination-Next")
_LISTS = ("allow_origins", "allow_methods", "allow_headers", "expose_headers")
_KEYS = frozenset({*_LISTS, "allow_credentials", "allow_origin_regex", "max_age"})


def cors_options(raw: Any, env: Mapping[str, str]) -> dict[str, Any]:
    """CORSMiddleware keyword arguments from `http.cors` (or None) and the environment."""
    origins = [o.strip() for o in env.get("CORS_ALLOW_ORIGINS", "*").split(",") if o.strip()]
    opts: dict[str, Any] = {
        "allow_origins": origins,
        "allow_methods": ["*"],
        "allow_headers": ["*"],
        "allow_credentials": origins != ["*"],
        "expose_headers": list(EXPOSED),
    }
    if raw is None:
        return opts
    if not isinstance(raw, Mapping):
        raise ConfigError("langgraph.json: 'http.cors' must be an object")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"http.cors: unknown option(s) {', '.join(unknown)}")
    for key in _LISTS:
        if key in raw:
            value = raw[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"http.cors.{key} must be a list of strings")
            opts[key] = list(value)
    if "allow_credentials" in raw:
        if not isinstance(raw["allow_credentials"], bool):
            raise ConfigError("http.cors.allow_credentials must be true or false")
        opts["allow_credentials"] = raw["allow_credentials"]
    if "allow_origin_regex" in raw:
        if not isinstance(raw["allow_origin_regex"], str):
            raise ConfigError("http.cors.allow_origin_regex must be a string")
        opts["allow_origin_regex"] = raw["allow_origin_regex"]
    if "max_age" in raw:
        age = raw["max_age"]
        if isinstance(age, bool) or not isinstance(age, int) or age < 0:
            raise ConfigError("http.cors.max_age must be a non-negative integer")
        opts["max_age"] = age
    exposed = {h.lower() for h in opts["expose_headers"]}
    opts["expose_headers"] += [h for h in EXPOSED if h.lower() not in exposed]
    return opts
