"""TLS: verification is on by default, a private CA is trusted through ``ca_file``, and a refused
certificate surfaces as a TransportError that says what went wrong.

The server is a few lines of asyncio over ``ssl`` (no httpx on the server side), with a CA and a
server certificate from ``local_pki`` (the one the simulator and the local control plane use).
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from client_kit import AK, PID, SK
from cryptography.x509.oid import ExtendedKeyUsageOID

from local_pki import CertificateAuthority, name
from rocketmq_operator.adapters import dms_client, signing
from rocketmq_operator.adapters.retrying import RetryPolicy
from rocketmq_operator.ports import errors


@dataclass
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _make_pki(directory: Path, *, server_names: list[str]) -> Pki:
    ca = CertificateAuthority.create("test CA", valid_for=datetime.timedelta(days=1))
    server = ca.issue(name(server_names[0]), ExtendedKeyUsageOID.SERVER_AUTH, server_names)
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca_file.write_bytes(ca.cert_pem)
    pki.cert_file.write_bytes(server.cert_pem)
    pki.key_file.write_bytes(server.key_pem)
    return pki


@dataclass
class TlsServer:
    url: str
    requests: list[bytes]
    connections: int = 0


async def _serve(pki: Pki) -> AsyncIterator[TlsServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    state = TlsServer(url="", requests=[])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            state.requests.append(head + await reader.readexactly(length))
            body = b'{"instance_id": "i-tls", "status": "RUNNING"}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        finally:
            writer.close()

    def quiet(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        # The handshakes this test makes fail on purpose; asyncio would log each one.
        if not isinstance(context.get("exception"), ssl.SSLError | ConnectionResetError):
            loop.default_exception_handler(context)

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(quiet)
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    state.url = f"https://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()
        loop.set_exception_handler(previous)


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[TlsServer, Pki]]:
    pki = _make_pki(tmp_path, server_names=["127.0.0.1", "localhost"])
    async for server in _serve(pki):
        yield server, pki


@pytest.fixture
async def wrong_name_server(tmp_path: Path) -> AsyncIterator[tuple[TlsServer, Pki]]:
    pki = _make_pki(tmp_path, server_names=["dms.elsewhere.example"])
    async for server in _serve(pki):
        yield server, pki


def _client(url: str, **tls: object) -> dms_client.DmsClient:
    return dms_client.build_client(
        endpoint=url,
        project_id=PID,
        credentials=signing.AkSkCredentials(AK, SK),
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.01),
        **tls,  # type: ignore[arg-type]
    )


async def test_an_untrusted_certificate_is_refused_by_default_with_a_clear_message(
    tls_server: tuple[TlsServer, Pki],
) -> None:
    server, _ = tls_server
    async with _client(server.url) as client:
        with pytest.raises(errors.CertificateRefused) as caught:
            await client.show_instance("i-tls")

    # Terminal: it fails the same way until the configuration changes, so the CR is Stalled.
    assert caught.value.terminal and caught.value.reason == "TLSVerificationFailed"
    message = str(caught.value)
    assert message.startswith(f"show: TLS certificate verification failed for GET {server.url[8:]}/v2/")
    assert "pass its certificate as ca_file" in message
    assert server.requests == []
    assert server.connections <= 1  # a certificate problem is not retried


async def test_the_private_ca_is_trusted_through_ca_file(tls_server: tuple[TlsServer, Pki]) -> None:
    server, pki = tls_server
    async with _client(server.url, ca_file=pki.ca_file) as client:
        view = await client.show_instance("i-tls")

    assert view.instance_id == "i-tls"
    assert server.requests[0].startswith(f"GET /v2/{PID}/instances/i-tls HTTP/1.1".encode())


async def test_a_certificate_for_another_host_is_refused_even_with_the_right_ca(
    wrong_name_server: tuple[TlsServer, Pki],
) -> None:
    server, pki = wrong_name_server
    async with _client(server.url, ca_file=pki.ca_file) as client:
        with pytest.raises(errors.CertificateRefused) as caught:
            await client.show_instance("i-tls")

    message = str(caught.value)
    assert "TLS certificate verification failed" in message
    assert "the certificate is for another host" in message
    assert server.requests == []


async def test_verification_can_be_turned_off_for_throwaway_setups(tls_server: tuple[TlsServer, Pki]) -> None:
    server, _ = tls_server
    async with _client(server.url, verify=False) as client:
        view = await client.show_instance("i-tls")

    assert view.instance_id == "i-tls"


def test_ca_file_with_verification_off_is_a_contradiction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ca_file makes no sense"):
        dms_client.tls_verification(verify=False, ca_file=tmp_path / "ca.pem")


def test_verification_defaults_to_on() -> None:
    assert dms_client.tls_verification() is True
