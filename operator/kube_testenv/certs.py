"""The throwaway PKI of one local control plane.

kube-apiserver only serves TLS and authenticates its admin by client certificate, so every control plane
gets a fresh CA, a serving certificate, an admin client certificate in ``system:masters`` (which RBAC
always allows) and a key that signs ServiceAccount tokens. Generating them in-process with
``cryptography`` keeps openssl out of the dependencies; EC P-256 keys are used because they are generated
in microseconds and every component (Go's crypto/tls, the token signer, Python's ssl) accepts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        # Kubernetes maps O= to the user's groups.
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Back-dated so a clock that is a little behind does not reject a certificate made a moment ago.
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
    )


def _leaf(
    subject: x509.Name,
    ca_name: x509.Name,
    ca_key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    builder = (
        _builder(subject, ca_name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def generate_certificates(directory: Path) -> Certificates:
    """Write a fresh CA, serving cert, admin client cert and ServiceAccount signing key into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_name = _name("kube-testenv-ca")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    san = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in SERVING_DNS] + [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVING_IPS]
    )
    serving_cert, serving_key = _leaf(_name("kube-apiserver"), ca_name, ca_key, ExtendedKeyUsageOID.SERVER_AUTH, san)
    admin_cert, admin_key = _leaf(_name(ADMIN_USER, ADMIN_GROUP), ca_name, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH)
    sa_key = _new_key()

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
        certs.ca_cert: _cert_pem(ca_cert),
        certs.ca_key: _key_pem(ca_key),
        certs.serving_cert: _cert_pem(serving_cert),
        certs.serving_key: _key_pem(serving_key),
        certs.admin_cert: _cert_pem(admin_cert),
        certs.admin_key: _key_pem(admin_key),
        certs.service_account_key: _key_pem(sa_key),
        certs.service_account_public_key: sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for path, data in files.items():
        path.write_bytes(data)
        # Private keys, even throwaway ones, are not world-readable.
        path.chmod(0o600)
    return certs
