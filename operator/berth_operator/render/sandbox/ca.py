"""The pool's certificate authority: key and certificate, the CA Secret, the bundle ConfigMap.

The auth-proxy intercepts TLS to inject credentials, so the sandbox must trust a CA
that the proxy holds the key of. One CA per pool (ECDSA P-256, 10 years), generated
once by the operator; the key goes into Secret ``<pool>-ca`` (mounted into the proxy
only), the public bundle (Mozilla's roots from certifi plus this CA) into ConfigMap
``<pool>-ca-bundle`` for the sandbox, which therefore mounts no Secret at all.

The key is derived from caller-supplied random bytes, so generation is a function of
its inputs (the ECDSA signature nonce aside) and tests can pin it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from berth_operator.render.meta import Subject
from berth_operator.render.sandbox.names import FROM_POOL_LABEL, PoolNames, child_metadata

CERT_KEY = "tls.crt"
KEY_KEY = "tls.key"
BUNDLE_KEY = "ca-bundle.crt"
TOKEN_KEY_KEY = "executor-token-key"
"""Optional: the pool's key for ``claim.derive_token`` (never mounted anywhere)."""
VALIDITY = dt.timedelta(days=3650)
SEED_BYTES = 32
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


@dataclass(frozen=True)
class CAMaterial:
    """A CA certificate and its private key, PEM-encoded."""

    cert_pem: str
    key_pem: str


def generate_ca(common_name: str, seed: bytes, now: dt.datetime) -> CAMaterial:
    """A self-signed CA for one pool; ``seed`` is ``SEED_BYTES`` from ``os.urandom``."""
    if len(seed) < SEED_BYTES:
        raise ValueError(f"seed must be at least {SEED_BYTES} random bytes")
    scalar = int.from_bytes(seed[:SEED_BYTES], "big") % (_P256_ORDER - 1) + 1
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    serial = int.from_bytes(hashlib.sha256(b"serial" + seed).digest()[:16], "big") >> 1
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Berth sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CAMaterial(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def mozilla_bundle() -> str:
    """certifi's copy of the Mozilla root store (read from the installed package)."""
    import certifi

    return Path(certifi.where()).read_text()


def ca_bundle(material: CAMaterial, mozilla: str) -> str:
    """Public roots plus the pool CA: sandbox programs trust both real and proxied TLS."""
    return mozilla.rstrip("\n") + "\n\n# Berth sandbox pool CA\n" + material.cert_pem


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def ca_secret(
    pool: Subject, material: CAMaterial, mozilla: str, token_key: bytes | None = None
) -> dict[str, Any]:
    """Secret ``<pool>-ca`` (Opaque): ``tls.crt``, ``tls.key``, ``ca-bundle.crt`` and,
    when given, ``executor-token-key`` (the Pods mount only the first two, in the proxy)."""
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": child_metadata(
            pool, PoolNames(pool.name).ca_secret, labels={FROM_POOL_LABEL: pool.name}
        ),
        "data": {
            CERT_KEY: _b64(material.cert_pem),
            KEY_KEY: _b64(material.key_pem),
            BUNDLE_KEY: _b64(ca_bundle(material, mozilla)),
        },
    }
    if token_key is not None:
        secret["data"][TOKEN_KEY_KEY] = base64.b64encode(token_key).decode()
    return secret


def token_key_from_secret(secret: Mapping[str, Any] | None) -> bytes | None:
    """The pool's executor token key held by ``<pool>-ca``; None when absent or short."""
    raw = ((secret or {}).get("data") or {}).get(TOKEN_KEY_KEY)
    if not raw:
        return None
    try:
        key = base64.b64decode(raw)
    except ValueError:
        return None
    return key if len(key) >= SEED_BYTES else None


def ca_bundle_config_map(pool: Subject, material: CAMaterial, mozilla: str) -> dict[str, Any]:
    """ConfigMap ``<pool>-ca-bundle`` with ``ca-bundle.crt``: the sandbox's trust store."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_metadata(
            pool, PoolNames(pool.name).ca_bundle, labels={FROM_POOL_LABEL: pool.name}
        ),
        "data": {BUNDLE_KEY: ca_bundle(material, mozilla)},
    }


def material_from_secret(secret: Mapping[str, Any] | None) -> CAMaterial | None:
    """The CA held by an existing ``<pool>-ca`` Secret; None when absent or unusable
    (missing keys, unparsable PEM, or a key that does not match the certificate)."""
    data = (secret or {}).get("data") or {}
    try:
        cert_pem = base64.b64decode(data[CERT_KEY]).decode()
        key_pem = base64.b64decode(data[KEY_KEY]).decode()
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (KeyError, ValueError, TypeError):
        return None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if cert.public_key().public_bytes(enc, pub) != key.public_key().public_bytes(enc, pub):
        return None
    return CAMaterial(cert_pem=cert_pem, key_pem=key_pem)
