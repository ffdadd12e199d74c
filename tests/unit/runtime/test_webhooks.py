"""Webhook URL policy (SSRF guard) and its configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from berth_runtime.config import ConfigError, WebhookPolicy, parse_config
from berth_runtime.webhooks.policy import check_resolved, check_url
from berth_runtime.webhooks.send import payload


def test_default_policy_blocks_loopback_and_odd_schemes() -> None:
    policy = WebhookPolicy()
    assert check_url("https://hooks.example.com/x", policy) is None
    assert check_url("http://localhost:9000/x", policy) is not None
    assert check_url("http://127.0.0.1/x", policy) is not None
    assert check_url("http://[::1]/x", policy) is not None
    assert check_url("ftp://example.com/x", policy) is not None
    assert check_url("/relative/path", policy) is not None
    assert check_url("http://example.com:99999/x", policy) is not None
    assert check_resolved(["93.184.216.34"], policy) is None
    assert check_resolved(["127.0.0.53"], policy) is not None


def test_policy_options() -> None:
    strict = WebhookPolicy(
        require_https=True, allowed_domains=("*.example.com", "exact.org"), allowed_ports=(443,)
    )
    assert check_url("https://a.example.com/x", strict) is None
    assert check_url("https://exact.org/x", strict) is None
    assert check_url("http://a.example.com/x", strict) is not None  # not https
    assert check_url("https://example.com/x", strict) is not None  # the wildcard needs a label
    assert check_url("https://evil.org/x", strict) is not None
    assert check_url("https://a.example.com:8443/x", strict) is not None
    assert check_url("https://a.example.com/" + "x" * 5000, strict) is not None
    open_loop = WebhookPolicy(disable_loopback=False)
    assert check_url("http://127.0.0.1:8080/x", open_loop) is None
    assert check_resolved(["127.0.0.1"], open_loop) is None


def test_webhook_config_parsing(tmp_path: Path) -> None:
    base = {"graphs": {"a": "./a.py:g"}}
    cfg = parse_config(
        {
            **base,
            "webhooks": {
                "url": {
                    "require_https": True,
                    "allowed_domains": ["X.com"],
                    "disable_loopback": False,
                },
                "headers": {"x-token": "t"},
            },
        },
        tmp_path,
    )
    assert cfg.webhooks.require_https and cfg.webhooks.allowed_domains == ("x.com",)
    assert not cfg.webhooks.disable_loopback and cfg.webhooks.headers == (("x-token", "t"),)
    assert parse_config(base, tmp_path).webhooks.disable_loopback
    for bad in ({"webhooks": []}, {"webhooks": {"url": {"allowed_ports": ["80"]}}}):
        with pytest.raises(ConfigError):
            parse_config({**base, **bad}, tmp_path)


def test_payload_splits_values_and_error() -> None:
    run = {"run_id": "r", "status": "error", "kwargs": {}, "ended_at": "t"}
    body = payload(run, {"x": 1, "__error__": {"error": "E", "message": "m"}})
    assert body["values"] == {"x": 1} and body["error"] == {"error": "E", "message": "m"}
    assert body["run_id"] == "r" and body["run_ended_at"] == "t"
