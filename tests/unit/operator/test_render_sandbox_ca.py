"""The pool CA: a real P-256 CA certificate that signs what the proxy mints, the Secret
(key for the proxy) and the public bundle ConfigMap (certifi roots plus the CA)."""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path

import certifi
import kubernetes_validate
from berth_operator.render.sandbox import ca as ca
from berth_operator.render.sandbox.pod import warm_pod
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.unit.operator.sandbox_factories import IMAGES, NOW, pool_spec, pool_subject

SEED = bytes(range(32))


def _material() -> ca.CAMaterial:
    return ca.generate_ca("py.ns1", SEED, NOW)


def test_ca_certificate_properties() -> None:
    m = _material()
    cert = x509.load_pem_x509_certificate(m.cert_pem.encode())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "py.ns1"
    assert cert.not_valid_after_utc - NOW >= dt.timedelta(days=3649)
    assert cert.not_valid_before_utc <= NOW


def test_key_follows_the_seed_and_signs_leaf_certificates() -> None:
    a, b = _material(), _material()
    assert a.key_pem == b.key_pem
    assert ca.generate_ca("py.ns1", os.urandom(32), NOW).key_pem != a.key_pem
    key = serialization.load_pem_private_key(a.key_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(a.cert_pem.encode())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.openai.com")]))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    leaf.verify_directly_issued_by(ca_cert)


def test_bad_seed_is_refused() -> None:
    try:
        ca.generate_ca("x", b"short", NOW)
    except ValueError as e:
        assert "32 random bytes" in str(e)
    else:
        raise AssertionError("a short seed was accepted")


def test_bundle_is_certifi_plus_the_ca() -> None:
    m = _material()
    mozilla = ca.mozilla_bundle()
    assert mozilla == Path(certifi.where()).read_text()
    bundle = ca.ca_bundle(m, mozilla)
    assert bundle.startswith(mozilla.rstrip("\n")) and bundle.endswith(m.cert_pem)
    begin = "-----BEGIN CERTIFICATE-----"
    assert bundle.count(begin) == mozilla.count(begin) + 1 > 100
    last = bundle[bundle.rindex(begin) :]
    assert x509.load_pem_x509_certificate(last.encode()) == x509.load_pem_x509_certificate(
        m.cert_pem.encode()
    )


def test_secret_and_config_map() -> None:
    m = _material()
    secret = ca.ca_secret(pool_subject(), m, "# roots\n")
    cm = ca.ca_bundle_config_map(pool_subject(), m, "# roots\n")
    for obj in (secret, cm):
        kubernetes_validate.validate(obj, "1.36", strict=True)
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "pool-uid"
    assert secret["metadata"]["name"] == "py-ca" and secret["type"] == "Opaque"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "tls.crt": m.cert_pem,
        "tls.key": m.key_pem,
        "ca-bundle.crt": ca.ca_bundle(m, "# roots\n"),
    }
    assert cm["metadata"]["name"] == "py-ca-bundle"
    assert cm["data"] == {"ca-bundle.crt": ca.ca_bundle(m, "# roots\n")}
    assert "PRIVATE KEY" not in cm["data"]["ca-bundle.crt"]


def test_material_from_secret_round_trips_and_refuses_mismatches() -> None:
    m = _material()
    secret = ca.ca_secret(pool_subject(), m, "")
    assert ca.material_from_secret(secret) == m
    assert ca.material_from_secret(None) is None
    assert ca.material_from_secret({"data": {"tls.crt": secret["data"]["tls.crt"]}}) is None
    other = ca.generate_ca("x", bytes(32), NOW)
    mixed = {
        "data": {
            "tls.crt": secret["data"]["tls.crt"],
            "tls.key": base64.b64encode(other.key_pem.encode()).decode(),
        }
    }
    assert ca.material_from_secret(mixed) is None
    garbage = {"data": {"tls.crt": "bm9wZQ==", "tls.key": "bm9wZQ=="}}
    assert ca.material_from_secret(garbage) is None


def test_token_key_rides_in_the_ca_secret_but_is_never_mounted() -> None:
    key = bytes(range(32))
    secret = ca.ca_secret(pool_subject(), _material(), "", token_key=key)
    kubernetes_validate.validate(secret, "1.36", strict=True)
    assert ca.token_key_from_secret(secret) == key
    assert ca.token_key_from_secret(ca.ca_secret(pool_subject(), _material(), "")) is None
    assert ca.token_key_from_secret({"data": {ca.TOKEN_KEY_KEY: "c2hvcnQ="}}) is None
    pod = warm_pod(pool_subject(), pool_spec(), "py-a", images=IMAGES)
    (vol,) = [v for v in pod["spec"]["volumes"] if v.get("secret", {}).get("secretName") == "py-ca"]
    assert [i["key"] for i in vol["secret"]["items"]] == ["tls.crt", "tls.key"]
