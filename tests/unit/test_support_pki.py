"""The local control plane's PKI: a CA that really signs what the API server and
the admin client present, with the names and groups Kubernetes checks."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.controlplane import fake_node, write_kubeconfig
from tests.support.pki import make_pki


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_serving_and_admin_certificates_chain_to_the_ca(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    ca = _load(pki.ca_cert)
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    for leaf in (_load(pki.serving_cert), _load(pki.admin_cert)):
        leaf.verify_directly_issued_by(ca)

    sans = _load(pki.serving_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert ipaddress.ip_address("127.0.0.1") in sans.value.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in sans.value.get_values_for_type(x509.DNSName)

    admin = _load(pki.admin_cert)
    orgs = admin.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["system:masters"]
    for key in (pki.ca_key, pki.serving_key, pki.admin_key, pki.sa_key):
        assert key.stat().st_mode & 0o077 == 0


def test_kubeconfig_embeds_credentials(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, "https://127.0.0.1:6443", pki)
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "berth-local"
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert config["users"][0]["user"]["client-key-data"]
    assert path.stat().st_mode & 0o077 == 0


def test_fake_nodes_are_selected_by_kwok_and_schedulable() -> None:
    node = fake_node("kwok-node-7")
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert "taints" not in node.get("spec", {})
    assert int(node["status"]["allocatable"]["pods"]) >= 300
