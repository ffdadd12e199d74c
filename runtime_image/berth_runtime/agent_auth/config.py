"""Provider configuration of Agent Auth (pure).

From `langgraph.json` (`agent_auth`) for local use, and from the environment variable
`BERTH_AGENT_AUTH_PROVIDERS` (JSON, what the operator renders from an AgentDeployment). A
provider names its endpoints (or an OIDC `issuer` whose discovery document gives them), a
client id, where its client secret comes from, default scopes and the redirect URL the
provider sends the user back to. Anything incomplete stops start-up with a message that
names the provider and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from berth_runtime.config_error import ConfigError

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
PROVIDER_KEYS = frozenset(
    {
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "client_id",
        "client_secret",
        "client_secret_env",
        "token_endpoint_auth_method",
        "scopes",
        "redirect_url",
        "authorize_params",
        "name",
    }
)
SECTION_KEYS = frozenset({"providers", "consent_ttl_seconds", "refresh_margin_seconds"})


@dataclass(frozen=True)
class Provider:
    """One OAuth 2.0 provider. Endpoints may be None until discovery fills them."""

    provider_id: str
    client_id: str
    redirect_url: str
    name: str = ""
    issuer: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    revocation_endpoint: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    token_endpoint_auth_method: str = "client_secret_basic"
    scopes: tuple[str, ...] = ()
    authorize_params: tuple[tuple[str, str], ...] = ()

    def public(self) -> dict[str, Any]:
        """What the API shows of a provider (never the secret)."""
        return {
            "provider_id": self.provider_id,
            "name": self.name or self.provider_id,
            "client_id": self.client_id,
            "issuer": self.issuer,
            "auth_url": self.authorization_endpoint,
            "token_url": self.token_endpoint,
            "revocation_url": self.revocation_endpoint,
            "redirect_url": self.redirect_url,
            "scopes": list(self.scopes),
            "uses_pkce": True,
            "code_challenge_method": "S256",
        }


@dataclass(frozen=True)
class AgentAuthConfig:
    providers: Mapping[str, Provider]
    consent_ttl_seconds: float = 600.0
    refresh_margin_seconds: float = 60.0


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty URL string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where} must be an http(s) URL, got {value!r}")
    if parts.fragment:
        raise ConfigError(f"{where} must not have a #fragment")
    return value


def _scopes(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise ConfigError(f"{where} must be a list of scope strings")
    if any(" " in s for s in value):
        raise ConfigError(f"{where}: a scope cannot contain a space")
    return tuple(value)


def parse_provider(provider_id: str, raw: Any, env: Mapping[str, str]) -> Provider:
    where = f"agent_auth.providers.{provider_id}"
    if not provider_id or not all(c.isalnum() or c in "-_." for c in provider_id):
        raise ConfigError(f"{where}: a provider id is letters, digits, '-', '_' or '.'")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be an object")
    unknown = sorted(set(raw) - PROVIDER_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} (known: {sorted(PROVIDER_KEYS)})")
    client_id = raw.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError(f"{where}.client_id is required")
    if "redirect_url" not in raw:
        raise ConfigError(
            f"{where}.redirect_url is required: the URL of this server's /v2/auth/callback "
            "as the provider's users reach it, registered with the provider"
        )
    redirect = _url(raw["redirect_url"], f"{where}.redirect_url")
    if not urlsplit(redirect).path.endswith("/v2/auth/callback"):
        raise ConfigError(f"{where}.redirect_url must end with /v2/auth/callback")
    issuer = None if raw.get("issuer") is None else _url(raw["issuer"], f"{where}.issuer")
    endpoints: dict[str, str | None] = {}
    for key in ("authorization_endpoint", "token_endpoint", "revocation_endpoint"):
        endpoints[key] = None if raw.get(key) is None else _url(raw[key], f"{where}.{key}")
    if issuer is None and not (endpoints["authorization_endpoint"] and endpoints["token_endpoint"]):
        raise ConfigError(
            f"{where}: set 'issuer' (OIDC discovery) or both 'authorization_endpoint' and "
            "'token_endpoint'"
        )
    method = raw.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ConfigError(f"{where}.token_endpoint_auth_method must be one of {AUTH_METHODS}")
    secret: str | None = None
    if raw.get("client_secret") is not None and raw.get("client_secret_env") is not None:
        raise ConfigError(f"{where}: set 'client_secret' or 'client_secret_env', not both")
    if raw.get("client_secret_env") is not None:
        name = raw["client_secret_env"]
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.client_secret_env must name an environment variable")
        secret = env.get(name) or None
        if secret is None:
            raise ConfigError(f"{where}: environment variable {name} (client secret) is not set")
    elif raw.get("client_secret") is not None:
        if not isinstance(raw["client_secret"], str) or not raw["client_secret"]:
            raise ConfigError(f"{where}.client_secret must be a non-empty string")
        secret = raw["client_secret"]
    if method != "none" and secret is None:
        raise ConfigError(
            f"{where}: a client secret is required with token_endpoint_auth_method {method!r} "
            "(set client_secret_env, or token_endpoint_auth_method 'none' for a public client)"
        )
    params = raw.get("authorize_params") or {}
    if not isinstance(params, Mapping) or not all(isinstance(v, str) for v in params.values()):
        raise ConfigError(f"{where}.authorize_params must map names to strings")
    reserved = {"state", "code_challenge", "code_challenge_method", "redirect_uri", "client_id"}
    if reserved & set(params):
        raise ConfigError(f"{where}.authorize_params cannot set {sorted(reserved & set(params))}")
    return Provider(
        provider_id=provider_id,
        name=str(raw.get("name") or provider_id),
        client_id=client_id,
        redirect_url=redirect,
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        revocation_endpoint=endpoints["revocation_endpoint"],
        client_secret=secret,
        token_endpoint_auth_method=str(method),
        scopes=_scopes(raw.get("scopes"), f"{where}.scopes"),
        authorize_params=tuple((str(k), str(v)) for k, v in params.items()),
    )


def _seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"agent_auth.{key} must be a positive number, got {value!r}")
    return float(value)


def parse_agent_auth(raw: Any, env: Mapping[str, str]) -> AgentAuthConfig | None:
    """`agent_auth` of langgraph.json merged with `BERTH_AGENT_AUTH_PROVIDERS` (env wins)."""
    env_raw = env.get("BERTH_AGENT_AUTH_PROVIDERS")
    if raw is None and not env_raw:
        return None
    section: dict[str, Any] = {}
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise ConfigError("langgraph.json: 'agent_auth' must be an object")
        section = dict(raw)
    unknown = sorted(set(section) - SECTION_KEYS)
    if unknown:
        raise ConfigError(f"agent_auth: unknown keys {unknown} (known: {sorted(SECTION_KEYS)})")
    providers_raw = dict(section.get("providers") or {})
    if env_raw:
        try:
            extra = json.loads(env_raw)
        except json.JSONDecodeError as e:
            raise ConfigError(f"BERTH_AGENT_AUTH_PROVIDERS is not JSON: {e}") from None
        if not isinstance(extra, Mapping):
            raise ConfigError("BERTH_AGENT_AUTH_PROVIDERS must be a JSON object of providers")
        providers_raw.update(extra)
    if not providers_raw:
        raise ConfigError("agent_auth.providers must name at least one provider")
    providers = {str(k): parse_provider(str(k), v, env) for k, v in providers_raw.items()}
    return AgentAuthConfig(
        providers=providers,
        consent_ttl_seconds=_seconds(section, "consent_ttl_seconds", 600.0),
        refresh_margin_seconds=_seconds(
            section,
            "refresh_margin_seconds",
            float(env.get("BERTH_AGENT_AUTH_REFRESH_MARGIN_SECONDS") or 60.0),
        ),
    )
