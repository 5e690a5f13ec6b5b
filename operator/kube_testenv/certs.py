"""The throwaway PKI of one local control plane.

kube-apiserver only serves TLS and authenticates its admin by client certificate, so every control plane
gets a fresh CA, a serving certificate, an admin client certificate in ``system:masters`` (which RBAC
always allows) and a key that signs ServiceAccount tokens, all from ``local_pki`` (shared with the
simulator's HTTPS mode); this module decides what the control plane needs and where the files go.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from local_pki import CertificateAuthority, key_pem, name, new_key

# 10.0.0.1 is the first address of the service range (--service-cluster-ip-range=10.0.0.0/24), i.e. the
# ClusterIP of the `kubernetes` Service; the DNS names are what in-cluster clients would dial.
SERVING_IPS = ("127.0.0.1", "::1", "10.0.0.1")
SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
ADMIN_USER = "kube-testenv-admin"
ADMIN_GROUP = "system:masters"


@dataclass(frozen=True)
class Certificates:
    """Files (PEM) written by :func:`generate_certificates`."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_public_key: Path

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    def admin_cert_pem(self) -> bytes:
        return self.admin_cert.read_bytes()

    def admin_key_pem(self) -> bytes:
        return self.admin_key.read_bytes()


def generate_certificates(directory: Path) -> Certificates:
    """Write a fresh CA, serving cert, admin client cert and ServiceAccount signing key into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.create("kube-testenv-ca", valid_for=dt.timedelta(days=365))
    serving = ca.issue(name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, [*SERVING_DNS, *SERVING_IPS])
    admin = ca.issue(name(ADMIN_USER, ADMIN_GROUP), ExtendedKeyUsageOID.CLIENT_AUTH)
    sa_key = new_key()

    certs = Certificates(
        directory=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        service_account_key=directory / "sa.key",
        # kube-apiserver cannot derive the verification key from a PKCS#8 EC private key (only from RSA
        # or SEC1 "EC PRIVATE KEY" files), so it gets the public key on its own.
        service_account_public_key=directory / "sa.pub",
    )
    files: dict[Path, bytes] = {
        certs.ca_cert: ca.cert_pem,
        certs.ca_key: key_pem(ca.key),
        certs.serving_cert: serving.cert_pem,
        certs.serving_key: serving.key_pem,
        certs.admin_cert: admin.cert_pem,
        certs.admin_key: admin.key_pem,
        certs.service_account_key: key_pem(sa_key),
        certs.service_account_public_key: sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for path, data in files.items():
        path.write_bytes(data)
        # Private keys, even throwaway ones, are not world-readable.
        path.chmod(0o600)
    return certs
