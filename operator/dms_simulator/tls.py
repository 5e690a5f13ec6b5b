"""A throw-away certificate authority and server certificate, so the simulator can serve HTTPS.

The operator talks to the real cloud over HTTPS and must verify it; testing that path (and its
failure when the CA is not trusted) needs a server with a certificate a test can choose to trust.
Every start makes a fresh CA and key (nothing is stored), and the CA PEM is handed to the caller.
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.x509.oid import ExtendedKeyUsageOID

from local_pki import CertificateAuthority, name


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # ssl can only load a chain from files; keep them just long enough to load.
        with tempfile.TemporaryDirectory(prefix="dms-sim-tls-") as directory:
            cert_path = os.path.join(directory, "server.pem")
            key_path = os.path.join(directory, "server.key")
            with open(cert_path, "wb") as cert_file:
                cert_file.write(self.cert_pem)
            with open(key_path, "wb") as key_file:
                key_file.write(self.key_pem)
            context.load_cert_chain(cert_path, key_path)
        return context


def generate(hosts: Iterable[str] = ()) -> TlsMaterial:
    """A CA valid for a day and a server certificate for 127.0.0.1, localhost and ``hosts``."""
    ca = CertificateAuthority.create("dms-simulator test CA", valid_for=datetime.timedelta(days=1))
    server = ca.issue(name("dms-simulator"), ExtendedKeyUsageOID.SERVER_AUTH, ["127.0.0.1", "localhost", *hosts])
    return TlsMaterial(ca_pem=ca.cert_pem, cert_pem=server.cert_pem, key_pem=server.key_pem)
