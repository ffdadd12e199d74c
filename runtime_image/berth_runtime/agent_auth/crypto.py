"""Tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) with MultiFernet for key rotation.

`BERTH_AGENT_AUTH_KEYS` holds one or more Fernet keys (url-safe base64 of 32 bytes,
`Fernet.generate_key()`), comma-separated, newest first: the first encrypts, every key
decrypts. Rotation: put a new key first, restart, `POST /v2/auth/keys/rotate` (or let tokens
be rewritten as they refresh), then drop the old key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from berth_runtime.config_error import ConfigError

KEYS_ENV = "BERTH_AGENT_AUTH_KEYS"


class Sealer:
    """Encrypts and decrypts token material; also keys the HMAC of `state` values."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ConfigError(f"{KEYS_ENV} must hold at least one Fernet key")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        # State MACs: one key per Fernet key, derived so that the encryption key itself is
        # never used for two purposes. The first signs; all verify (rotation).
        self.state_keys = [hashlib.sha256(b"berth-agent-auth-state\x00" + k).digest() for k in keys]

    def seal(self, plain: str) -> bytes:
        return self._fernet.encrypt(plain.encode())

    def open(self, sealed: bytes) -> str:
        return self._fernet.decrypt(bytes(sealed)).decode()

    def rotate(self, sealed: bytes) -> bytes:
        """The same plaintext under the newest key."""
        return self._fernet.rotate(bytes(sealed))

    def mac(self, message: bytes, key_index: int = 0) -> bytes:
        return hmac.new(self.state_keys[key_index], message, hashlib.sha256).digest()


def sealer_from_env(env: Mapping[str, str]) -> Sealer:
    raw = env.get(KEYS_ENV, "")
    keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ConfigError(
            f"{KEYS_ENV} is required when agent_auth providers are configured: "
            "comma-separated Fernet keys, newest first (python -c "
            '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
        )
    try:
        return Sealer(keys)
    except ValueError as e:
        raise ConfigError(f"{KEYS_ENV}: not a Fernet key ({e})") from None


__all__ = ["KEYS_ENV", "InvalidToken", "Sealer", "sealer_from_env"]
