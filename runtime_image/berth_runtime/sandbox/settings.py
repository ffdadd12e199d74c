"""Which sandbox a run's agent gets: the `sandbox` key of `langgraph.json` plus env vars.

`langgraph.json` (the graph author's defaults):

    "sandbox": {"pool": "python", "scope": "thread", "ttlSeconds": 1800}

Environment (set by the operator from the AgentDeployment's `spec.sandbox`, or by hand;
wins over `langgraph.json`): `BERTH_SANDBOX_POOL`, `BERTH_SANDBOX_SCOPE`,
`BERTH_SANDBOX_TTL_SECONDS`, `BERTH_SANDBOX_READY_TIMEOUT_SECONDS`,
`BERTH_SANDBOX_NAMESPACE` (default: the Pod's namespace), `BERTH_SANDBOX_TOKEN_KEY` (the key
executor tokens are derived from; from Secret `<deployment>-sandbox-key`),
`BERTH_SANDBOX_TOKEN_WAIT_SECONDS` (default 90: how long after binding a 401 is retried
while kubelet refreshes the Pod's token file; 0 disables), `BERTH_DEPLOYMENT_NAME` (the
AgentDeployment, named in new claims' `spec.deploymentRef`). For local runs and tests,
`BERTH_SANDBOX_URL` and `BERTH_SANDBOX_TOKEN` name one executor directly, no Kubernetes.
Pure parsing; the caller reads files and the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from berth_runtime.config_error import ConfigError

Scope = Literal["thread", "assistant"]
SCOPES: tuple[Scope, ...] = ("thread", "assistant")
DEFAULT_TTL_SECONDS = 1800.0
DEFAULT_READY_TIMEOUT_SECONDS = 60.0
DEFAULT_TOKEN_WAIT_SECONDS = 90.0
MIN_TOKEN_KEY_LENGTH = 32
_KEYS = {"pool", "scope", "ttlSeconds", "readyTimeoutSeconds", "namespace"}


@dataclass(frozen=True)
class SandboxSettings:
    """Where sandboxes come from and how long an idle one is kept."""

    pool: str | None = None
    scope: Scope = "thread"
    ttl_seconds: float = DEFAULT_TTL_SECONDS
    ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS
    namespace: str | None = None
    url: str | None = None
    token: str | None = None
    token_key: str | None = field(default=None, repr=False)
    token_wait_seconds: float = DEFAULT_TOKEN_WAIT_SECONDS
    deployment: str | None = None
    """The AgentDeployment that claims (``spec.deploymentRef`` of new claims)."""

    @property
    def enabled(self) -> bool:
        return bool(self.pool or self.url)

    @property
    def static(self) -> bool:
        """One fixed executor (local runs, tests) instead of claims on a pool."""
        return bool(self.url)


def _scope(value: Any, what: str) -> Scope:
    for s in SCOPES:
        if value == s:
            return s
    raise ConfigError(f"{what} must be 'thread' or 'assistant', got {value!r}")


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{what} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{what} must be a positive number of seconds, got {value!r}")
    return float(value)


def _non_negative(value: str, what: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{what} must be a number of seconds, got {value!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ConfigError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def parse_sandbox(raw: Any) -> SandboxSettings:
    """Validate the `sandbox` object of `langgraph.json` (None: no sandbox configured)."""
    if raw is None:
        return SandboxSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError("langgraph.json: 'sandbox' must be an object")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(
            f"langgraph.json: unknown key(s) in 'sandbox': {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KEYS))})"
        )
    s = SandboxSettings()
    if raw.get("pool") is not None:
        s = replace(s, pool=_name(raw["pool"], "sandbox.pool"))
    if raw.get("scope") is not None:
        s = replace(s, scope=_scope(raw["scope"], "sandbox.scope"))
    if raw.get("ttlSeconds") is not None:
        s = replace(s, ttl_seconds=_seconds(raw["ttlSeconds"], "sandbox.ttlSeconds"))
    if raw.get("readyTimeoutSeconds") is not None:
        s = replace(
            s,
            ready_timeout_seconds=_seconds(
                raw["readyTimeoutSeconds"], "sandbox.readyTimeoutSeconds"
            ),
        )
    if raw.get("namespace") is not None:
        s = replace(s, namespace=_name(raw["namespace"], "sandbox.namespace"))
    return s


def with_env(base: SandboxSettings, env: Mapping[str, str]) -> SandboxSettings:
    """Overlay the `BERTH_SANDBOX_*` variables (set ones win) on `langgraph.json`'s values."""

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value and value.strip() else None

    s = base
    if (pool := get("BERTH_SANDBOX_POOL")) is not None:
        s = replace(s, pool=pool)
    if (scope := get("BERTH_SANDBOX_SCOPE")) is not None:
        s = replace(s, scope=_scope(scope, "BERTH_SANDBOX_SCOPE"))
    if (ttl := get("BERTH_SANDBOX_TTL_SECONDS")) is not None:
        s = replace(s, ttl_seconds=_seconds(ttl, "BERTH_SANDBOX_TTL_SECONDS"))
    if (ready := get("BERTH_SANDBOX_READY_TIMEOUT_SECONDS")) is not None:
        s = replace(s, ready_timeout_seconds=_seconds(ready, "BERTH_SANDBOX_READY_TIMEOUT_SECONDS"))
    namespace = get("BERTH_SANDBOX_NAMESPACE") or get("POD_NAMESPACE")
    if namespace is not None:
        s = replace(s, namespace=namespace)
    if (key := get("BERTH_SANDBOX_TOKEN_KEY")) is not None:
        if len(key) < MIN_TOKEN_KEY_LENGTH:
            raise ConfigError(
                f"BERTH_SANDBOX_TOKEN_KEY must be at least {MIN_TOKEN_KEY_LENGTH} characters"
            )
        s = replace(s, token_key=key)
    if (wait := get("BERTH_SANDBOX_TOKEN_WAIT_SECONDS")) is not None:
        s = replace(s, token_wait_seconds=_non_negative(wait, "BERTH_SANDBOX_TOKEN_WAIT_SECONDS"))
    if (deployment := get("BERTH_DEPLOYMENT_NAME")) is not None:
        s = replace(s, deployment=deployment)
    url, token = get("BERTH_SANDBOX_URL"), get("BERTH_SANDBOX_TOKEN")
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"BERTH_SANDBOX_URL must be an http(s) URL, got {url!r}")
        if token is None:
            raise ConfigError("BERTH_SANDBOX_URL needs BERTH_SANDBOX_TOKEN (the executor token)")
        s = replace(s, url=url, token=token)
    return s
