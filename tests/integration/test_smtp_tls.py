"""Email leaves over TLS unless told otherwise: smtp:// requires STARTTLS, smtp+insecure:// is
the explicit way to send in clear (a relay on the same host)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kindly.errors import ConfigError
from kindly.messaging.email import send_email
from tests.support import services


class Inbox:
    """Keeps each message with whether it arrived over TLS."""

    def __init__(self):
        self.received: list[tuple[bytes, bool]] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.content, session.ssl is not None))
        return "250 Message accepted"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _server(inbox: Inbox, tls: ssl.SSLContext | None) -> Controller:
    kwargs = {"tls_context": tls, "require_starttls": True} if tls else {}
    controller = Controller(inbox, hostname="127.0.0.1", port=services.free_port(), **kwargs)
    controller.start()
    return controller


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "k@example.org", "a@example.org", "Hi"
    message.set_content("your link: https://pay.example.com/s/abc")
    return message


def test_smtp_url_upgrades_to_tls(certificate, tmp_path, monkeypatch):
    cert_file, key_file = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trust the test's own certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    inbox = Inbox()
    controller = _server(inbox, tls)
    try:
        send_email(_message(), f"smtp://127.0.0.1:{controller.port}", tmp_path / "outbox", "k1")
    finally:
        controller.stop()
    assert [encrypted for _, encrypted in inbox.received] == [True]


def test_smtp_url_refuses_a_server_without_starttls(tmp_path):
    inbox = Inbox()
    controller = _server(inbox, None)
    try:
        with pytest.raises(ConfigError, match="does not offer STARTTLS"):
            send_email(_message(), f"smtp://127.0.0.1:{controller.port}", tmp_path / "o", "k2")
    finally:
        controller.stop()
    assert inbox.received == []  # nothing went out in clear


def test_sending_in_clear_must_be_said(tmp_path):
    inbox = Inbox()
    controller = _server(inbox, None)
    try:
        with pytest.raises(ConfigError, match="smtp\\+insecure://"):
            url = f"smtp://127.0.0.1:{controller.port}?starttls=0"
            send_email(_message(), url, tmp_path / "o", "k3")
        send_email(_message(), f"smtp+insecure://127.0.0.1:{controller.port}", tmp_path, "k4")
    finally:
        controller.stop()
    assert [encrypted for _, encrypted in inbox.received] == [False]
