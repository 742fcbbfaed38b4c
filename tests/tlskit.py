"""A throwaway certificate authority for the HTTPS tests, and Chromium trusting it.

The CA and its server certificates are made with ``cryptography`` (already installed as a
dependency of aiortc). Chromium is told to trust the CA by the SHA-256 of its public key
(``--ignore-certificate-errors-spki-list``) and resolves ``cloudhelp.test`` to 127.0.0.1: a name
that is not ``localhost``, so the page is a secure context only because it came over TLS.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from playwright.async_api import Browser, Page, expect

from cloudhelp.domain.accounts import STAFF_COOKIE
from tests.browserkit import new_page, snap
from tests.callkit import DEMO_PASSWORD

HOSTNAME = "cloudhelp.test"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class TestCA:
    """A CA certificate and key; ``issue`` makes server certificates it signs."""

    __test__ = False  # not a pytest test class

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    folder: Path

    @classmethod
    def create(cls, folder: Path) -> TestCA:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("CloudHelp test CA"))
            .issuer_name(_name("CloudHelp test CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
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
            .sign(key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        ca = cls(key, cert, folder)
        ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    @property
    def cert_file(self) -> Path:
        return self.folder / "ca.pem"

    def issue(self, stem: str) -> tuple[Path, Path, int]:
        """A server certificate for cloudhelp.test and 127.0.0.1 (chain: leaf, CA) and its key,
        written as ``<stem>.pem`` and ``<stem>.key``; returns the files and the serial."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(HOSTNAME))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(HOSTNAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = self.folder / f"{stem}.pem", self.folder / f"{stem}.key"
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.cert.public_bytes(
            serialization.Encoding.PEM
        )
        cert_file.write_bytes(chain)
        key_file.write_bytes(_pem_key(key))
        return cert_file, key_file, serial

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this CA only (hostname checked)."""
        return ssl.create_default_context(cafile=str(self.cert_file))

    def spki_sha256(self) -> str:
        """Base64 SHA-256 of the CA's SubjectPublicKeyInfo, as Chromium's flag takes it."""
        spki = self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def chromium_flags(self) -> list[str]:
        """Chromium flags: trust this CA, and resolve cloudhelp.test to 127.0.0.1."""
        return [
            f"--ignore-certificate-errors-spki-list={self.spki_sha256()}",
            f"--host-resolver-rules=MAP {HOSTNAME} 127.0.0.1",
        ]


def presented_serial(port: int, context: ssl.SSLContext, host: str = HOSTNAME) -> int:
    """The serial number of the certificate a fresh TLS handshake on 127.0.0.1:``port`` gets."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def staff_console_over_https(browser: Browser, base_url: str, shot: str) -> Page:
    """The staff console at ``base_url`` (https://cloudhelp.test:PORT) in Chromium: it loads as
    a secure context with HSTS, its static files load, signing in (zhaogang, DEMO_PASSWORD set
    beforehand) gives a ``Secure`` session cookie, and the signaling WebSocket opens over wss
    (the console shows 暂离 once the server's presence frame came through it)."""
    page = await new_page(browser, base_url)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    response = await page.goto("/staff")
    assert response is not None and response.status == 200
    assert response.url.startswith("https://")
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert await page.evaluate("window.isSecureContext") is True
    assert await page.evaluate("!!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)")
    await page.fill("#username", "zhaogang")
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-form button")
    await expect(page.locator("#state")).to_have_text("暂离")
    assert sockets and all(url.startswith(f"wss://{HOSTNAME}:") for url in sockets), sockets
    (session,) = [c for c in await page.context.cookies() if c["name"] == STAFF_COOKIE]
    assert session["secure"] is True and session["httpOnly"] is True
    await snap(page, shot)
    return page


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for programs that must be told their port)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for_port(port: int, timeout: float = 10.0, what: str = "server") -> None:
    """Until something accepts TCP connections on 127.0.0.1:``port``."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"{what} is not listening on port {port}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
