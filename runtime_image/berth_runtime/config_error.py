"""The error a configuration problem raises, in a module of its own: every layer that reads
configuration (the graph loader, the sandbox and Agent Auth settings, CORS) raises it, and
none of them may import `config`, which imports some of them."""

from __future__ import annotations


class ConfigError(ValueError):
    """The configuration cannot be used; the message says what to fix."""
