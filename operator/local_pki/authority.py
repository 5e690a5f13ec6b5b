"""A CA that issues leaf certificates, in memory; callers decide where (and whether) PEM is written.

Made in-process with ``cryptography`` so openssl stays out of the dependencies. EC P-256 keys are
used because they are generated in microseconds and every consumer here (Go's crypto/tls, the
ServiceAccount token signer, Python's ssl) accepts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

BACKDATE = dt.timedelta(hours=1)
"""A clock a little behind must not reject a certificate made a moment ago."""


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        # Kubernetes maps O= to the user's groups.
        attributes.insert(0, x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def alt_names(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    """IP addresses as IP entries (a client checks those against the address it dialled), the rest as DNS."""
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Issued:
    """A leaf certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA; every certificate it issues is valid as long as the CA is."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str, *, valid_for: dt.timedelta) -> CertificateAuthority:
        key = new_key()
        subject = name(common_name)
        now = dt.datetime.now(dt.UTC)
        cert = (
            _builder(subject, subject, key, now - BACKDATE, now + valid_for)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, subject: x509.Name, usage: x509.ObjectIdentifier, hosts: Iterable[str] = ()) -> Issued:
        """A certificate for ``usage`` (server or client auth); ``hosts`` become its subject alternative names."""
        key = new_key()
        builder = (
            _builder(subject, self.cert.subject, key, self.cert.not_valid_before_utc, self.cert.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        hosts = list(hosts)
        if hosts:
            builder = builder.add_extension(alt_names(hosts), critical=False)
        return Issued(builder.sign(self.key, hashes.SHA256()), key)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, start: dt.datetime, end: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
