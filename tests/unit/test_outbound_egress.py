"""Outgoing webhooks go only to public https addresses: checked when saved and at connect time."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl

import pytest
from sqlalchemy import func, select

from kindly.campaigns.models import Debtor
from kindly.errors import ConfigError
from kindly.infra.config import check_production, load_settings
from kindly.outbound import egress
from kindly.outbound.models import WebhookDelivery, WebhookSubscription
from kindly.tracking import events
from kindly.tracking.models import Event
from tests.support.app import installed, load_campaign, make_settings
from tests.unit.test_api import auth, conforms, key_for
from tests.unit.test_outbound import Receiver
from workers import outbound as jobs


def _certificates(tmp_path, names: list[str]) -> tuple[str, ssl.SSLContext]:
    """A test CA's file and a server context whose certificate (by that CA) names `names`."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def issue(subject, key, issuer, signer, ca: bool):
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kindly test CA")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    ca = issue(ca_name, ca_key, ca_name, ca_key, True)
    leaf = issue(leaf_name, leaf_key, ca_name, ca_key, False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(
        leaf.public_bytes(pem)
        + leaf_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "leaf.pem")
    return str(tmp_path / "ca.pem"), server


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """An https receiver on 127.0.0.1 whose certificate names localhost and rebind.test."""
    ca, server = _certificates(tmp_path, ["localhost", "rebind.test"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)  # requests trusts the test CA, nothing else
    receiver = Receiver(tls=server)
    yield receiver
    receiver.server.shutdown()


def _store(ctx, url: str) -> str:
    """A subscription saved as older versions allowed (straight into the table); its secret."""
    with ctx.db.session() as session:
        latest = session.scalar(select(func.max(Event.id))) or 0
        session.add(WebhookSubscription(url=url, secret="whsec_test", events=["contact"],
                                        last_event_id=latest))  # fmt: skip
    return "whsec_test"


def _contact(ctx) -> None:
    """A debtor's question, the kind of event that carries a message and a phone number."""
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        events.record(session, debtor, "contact", data={"message": "Hi", "phone": "+4915100000"})


def _deliveries(ctx) -> list[tuple[str, str | None]]:
    with ctx.db.session() as session:
        return list(session.execute(select(WebhookDelivery.status, WebhookDelivery.error)).all())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/kindly", "must use https"),
        ("https://127.0.0.1/hook", "a loopback address"),
        ("https://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("https://[::1]:8443/hook", "a loopback address"),
        ("https://10.0.0.1/hook", "a private address"),
        ("https://192.168.1.20/hook", "a private address"),
        ("https://100.64.0.1/hook", "a CGNAT address"),
        ("https://localhost/hook", "a loopback address (127.0.0.1)"),
        ("https://[::ffff:127.0.0.1]/hook", "a loopback address"),
        ("https://[fd00:ec2::254]/hook", "a cloud metadata address"),
        ("https://[fe80::1]/hook", "a link-local address"),
        ("https://0.0.0.0/hook", "an unspecified address"),
        ("https://224.0.0.1/hook", "a multicast address"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
        ("https://[::1/hook", "an absolute https URL"),  # a 500 before
        ("https://hooks.example.com:99999/", "an absolute https URL"),
    ],
)
def test_the_api_refuses_http_and_non_public_addresses(client, ctx, url, reason):
    admin = key_for(ctx, "admin")
    response = client.post("/api/v1/webhooks", headers=auth(admin), json={"url": url})
    assert response.status_code == 400
    conforms(response, "/webhooks", "post")
    assert reason in response.get_json()["error"]
    assert response.get_json()["error"].startswith("url: ")
    assert client.get("/api/v1/webhooks", headers=auth(admin)).get_json() == {"webhooks": []}


def test_delivery_checks_again_and_never_posts_to_a_loopback_host(ctx, tls_receiver):
    load_campaign(ctx)
    tls_receiver.secret = _store(ctx, tls_receiver.url)  # https://localhost:<port>/…
    _contact(ctx)
    with ctx.db.session() as session:
        [handle] = jobs.deliver_pending(session)
    assert handle.status == "failed"
    assert tls_receiver.received == [] and tls_receiver.rejected == 0
    [(status, error)] = _deliveries(ctx)
    assert status == "retrying"
    assert error.startswith("refused: url: the host 'localhost' is a loopback address")
    assert "+4915100000" not in error


def test_the_switch_lets_local_receivers_in_with_tls_checked_for_the_name(
    tmp_path, tls_receiver, monkeypatch
):
    settings = make_settings(tmp_path / "on", KINDLY_OUTBOUND_ALLOW_PRIVATE="on")
    with installed(settings) as ctx:
        load_campaign(ctx)
        tls_receiver.secret = _store(ctx, tls_receiver.url)
        _store(ctx, f"https://127.0.0.1:{tls_receiver.port}/hooks/kindly")  # no such name
        _contact(ctx)
        with ctx.db.session() as session:
            handles = jobs.deliver_pending(session)
        assert sorted(h.status for h in handles) == ["failed", "finished"]
        assert [e["data"]["message"] for e in tls_receiver.received] == ["Hi"]
        errors = [error for status, error in _deliveries(ctx) if status == "retrying"]
        assert len(errors) == 1 and "CERTIFICATE_VERIFY_FAILED" in errors[0]


def test_a_name_that_resolves_elsewhere_at_connect_time_is_not_followed(
    tmp_path, tls_receiver, monkeypatch
):
    """DNS rebinding: the address checked is the one connected to, whatever DNS says next."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"])  # the first answer; every later one points elsewhere

    def dns(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.2")  # nothing listens there
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    settings = make_settings(tmp_path / "on", KINDLY_OUTBOUND_ALLOW_PRIVATE="on")
    with installed(settings) as ctx:
        load_campaign(ctx)
        tls_receiver.secret = _store(ctx, f"https://rebind.test:{tls_receiver.port}/hooks")
        _contact(ctx)
        with ctx.db.session() as session:
            [handle] = jobs.deliver_pending(session)
    assert handle.status == "finished"
    assert [e["type"] for e in tls_receiver.received] == ["contact"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("172.16.5.4", False),
        ("100.127.255.254", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("240.0.0.1", False),
        ("255.255.255.255", False),
    ],
)
def test_which_addresses_count_as_public(address, public):
    assert (egress.refusal(ipaddress.ip_address(address)) is None) is public


def test_the_switch_is_refused_in_production(tmp_path):
    env = {
        "KINDLY_DATA_DIR": str(tmp_path), "KINDLY_ENV": "production",
        "KINDLY_SECRET_KEY": "x" * 32, "KINDLY_DATABASE_URL": "sqlite:///x.db",
        "KINDLY_BASE_URL": "https://pay.example.com", "KINDLY_OUTBOUND_ALLOW_PRIVATE": "on",
        "KINDLY_PAYMENTS": "none",  # so that only the switch is missing
    }  # fmt: skip
    with pytest.raises(ConfigError, match="KINDLY_OUTBOUND_ALLOW_PRIVATE"):
        check_production(load_settings(env), env)
    assert (
        load_settings({**env, "KINDLY_OUTBOUND_ALLOW_PRIVATE": ""}).outbound_allow_private is False
    )
    with pytest.raises(ConfigError, match="on or off"):
        load_settings({**env, "KINDLY_OUTBOUND_ALLOW_PRIVATE": "maybe"})
