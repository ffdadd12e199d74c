"""Which webhook URLs are acceptable (pure; DNS answers are passed in)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from berth_runtime.config import WebhookPolicy


def _domain_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    if not allowed:
        return True
    for pattern in allowed:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_url(url: str, policy: WebhookPolicy) -> str | None:
    """Why `url` is refused before any DNS lookup, or None if it passes."""
    if len(url) > policy.max_url_length:
        return f"webhook URL longer than {policy.max_url_length} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        return f"invalid webhook URL: {e}"
    if parts.scheme not in ("http", "https"):
        return "webhook URL must be absolute http(s)"
    if policy.require_https and parts.scheme != "https":
        return "webhook URL must use https"
    host = (parts.hostname or "").lower()
    if not host:
        return "webhook URL has no host"
    if not _domain_allowed(host, policy.allowed_domains):
        return f"webhook host {host!r} is not in webhooks.url.allowed_domains"
    if policy.allowed_ports and (port or (443 if parts.scheme == "https" else 80)) not in (
        policy.allowed_ports
    ):
        return "webhook port is not in webhooks.url.allowed_ports"
    if policy.disable_loopback and (host == "localhost" or _is_loopback(host)):
        return "webhook URL points at loopback (set webhooks.url.disable_loopback to false)"
    return None


def check_resolved(addresses: Iterable[str], policy: WebhookPolicy) -> str | None:
    """Refuse a host whose DNS answers include loopback, when loopback is disabled."""
    if policy.disable_loopback and any(_is_loopback(a) for a in addresses):
        return "webhook host resolves to loopback"
    return None
