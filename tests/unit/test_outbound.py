"""Outgoing webhooks: the creditor's system receives signed events, once each, with retries."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Debtor
from kindly.cli import cli
from kindly.outbound import deliveries as outbound
from kindly.outbound.models import WebhookDelivery
from kindly.payments.models import Payment
from kindly.tracking import events
from kindly.tracking.models import Event
from tests.support.app import load_campaign, make_settings
from tests.unit.test_api import auth, conforms, key_for
from workers import outbound as jobs


class Receiver:
    """A local HTTP endpoint that checks each signature; `fail` answers 500 that many times.

    With `tls` it answers https on https://localhost:<port> instead."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.secret = ""
        self.received: list[dict] = []
        self.rejected = 0
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signature = self.headers.get(outbound.HEADER, "")
                if not outbound.verify(receiver.secret, signature, body):
                    receiver.rejected += 1
                    self.send_response(401)
                elif receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(500)
                else:
                    receiver.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/kindly"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.port}/hooks/kindly"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def settings(tmp_path):
    """The receivers here listen on loopback over http: the development switch lets them in."""
    return make_settings(tmp_path / "var", KINDLY_OUTBOUND_ALLOW_PRIVATE="on")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def _debtor(session, reference: str = "A-1") -> Debtor:
    return session.scalar(select(Debtor).where(Debtor.reference == reference))


def test_signature_round_trip_and_tampering():
    body = b'{"type":"paid"}'
    header = outbound.sign("whsec_x", body)
    assert header.startswith("t=") and ",v1=" in header
    assert outbound.verify("whsec_x", header, body)
    assert not outbound.verify("whsec_y", header, body)
    assert not outbound.verify("whsec_x", header, body + b" ")
    assert not outbound.verify("whsec_x", header.split(",v1=")[0] + ",v1=\u00e9", body)
    assert not outbound.verify("whsec_x", outbound.sign("whsec_x", body, 1000), body)  # too old


def test_subscribed_events_reach_the_receiver_signed_and_only_once(client, ctx, receiver):
    load_campaign(ctx)
    with ctx.db.session() as session:
        events.record(session, _debtor(session), "paid")  # before the subscription: not sent
    admin = key_for(ctx, "admin")
    created = client.post("/api/v1/webhooks", headers=auth(admin),
                          json={"url": receiver.url, "campaign": "winter"})  # fmt: skip
    assert created.status_code == 201
    conforms(created, "/webhooks", "post")
    receiver.secret = created.get_json()["secret"]
    with ctx.db.session() as session:
        a1, a2 = _debtor(session), _debtor(session, "A-2")
        events.record(session, a1, "viewed")  # not a webhook event
        session.add(Payment(campaign_id=a1.campaign_id, debtor_id=a1.id, provider="sandbox",
                            provider_ref="p-1", amount_minor=100000, currency="EUR",
                            status="succeeded"))  # fmt: skip
        events.record(session, a1, "paid", data={"amount_minor": 123456})
        events.record(session, a2, "contact", data={"topic": "question", "message": "Hi"})
        events.record(session, a2, "opted_out", channel="email")
    with ctx.db.session() as session:
        handles = jobs.deliver_pending(session)
    assert [h.status for h in handles] == ["finished"] * 3
    assert handles[0].id.startswith("webhook-")
    assert receiver.rejected == 0
    assert [(e["type"], e["reference"], e["campaign"]) for e in receiver.received] == [
        ("paid", "A-1", "winter"), ("contact", "A-2", "winter"), ("opted_out", "A-2", "winter"),
    ]  # fmt: skip
    assert receiver.received[0]["data"] == {"amount_minor": 123456}
    # each post says what state the case is in (kindly.cases), so the receiver need not guess
    assert receiver.received[0]["case"]["state"] == "partly_paid"
    assert receiver.received[0]["case"]["balance_minor"] == 123456 - 100000
    assert receiver.received[1]["case"]["state"] == "open"
    with ctx.db.session() as session:
        assert jobs.deliver_pending(session) == []  # the watermark moved: nothing twice
    assert len(receiver.received) == 3
    listed = client.get("/api/v1/webhooks", headers=auth(admin))
    conforms(listed, "/webhooks", "get")
    [sub] = listed.get_json()["webhooks"]
    assert "secret" not in sub and receiver.secret.startswith(sub["secret_prefix"])


def test_a_failing_receiver_is_retried_until_it_answers(ctx, receiver, monkeypatch):
    load_campaign(ctx)
    monkeypatch.setattr(outbound, "BACKOFF", (0, 0, 0))
    monkeypatch.setattr(outbound, "MAX_ATTEMPTS", 4)
    with ctx.db.session() as session:
        sub, receiver.secret = outbound.subscribe(
            session, receiver.url, ["promise"], allow_private=True
        )
        events.record(session, _debtor(session), "promise", data={"amount_minor": 500})
        expected_id = jobs.job_id(sub.id, session.scalar(select(func.max(Event.id))))
    receiver.fail = 2
    for expected in ("failed", "failed", "finished"):
        with ctx.db.session() as session:
            [handle] = jobs.deliver_pending(session)
        assert handle.status == expected
        assert handle.id == expected_id  # the same job each time: one per (subscription, event)
    with ctx.db.session() as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert (delivery.status, delivery.attempts, delivery.response_status) == (
            "delivered",
            3,
            204,
        )
    assert [e["type"] for e in receiver.received] == ["promise"]


def test_a_receiver_that_never_answers_ends_failed(ctx, monkeypatch):
    load_campaign(ctx)
    monkeypatch.setattr(outbound, "BACKOFF", (0,))
    monkeypatch.setattr(outbound, "MAX_ATTEMPTS", 2)
    with ctx.db.session() as session:
        outbound.subscribe(session, "http://127.0.0.1:9/nobody", None, allow_private=True)
        events.record(session, _debtor(session), "plan_agreed")
    for _ in range(3):
        with ctx.db.session() as session:
            jobs.deliver_pending(session)
    with ctx.db.session() as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert (delivery.status, delivery.attempts) == ("failed", 2)
        assert "ConnectionError" in delivery.error


def test_cli_delivers_and_the_api_manages_subscriptions(client, ctx, receiver, monkeypatch):
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    monkeypatch.setenv("KINDLY_OUTBOUND_ALLOW_PRIVATE", "on")
    load_campaign(ctx)
    admin, manager = key_for(ctx, "admin"), key_for(ctx, "manager", "m@example.org")
    assert client.post("/api/v1/webhooks", headers=auth(manager),
                       json={"url": receiver.url}).status_code == 403  # fmt: skip
    for bad in ({"url": "ftp://x"}, {"url": receiver.url, "events": ["viewed"]}, ["x"]):
        response = client.post("/api/v1/webhooks", headers=auth(admin), json=bad)
        assert response.status_code == 400
        conforms(response, "/webhooks", "post")
    unknown = client.post("/api/v1/webhooks", headers=auth(admin),
                          json={"url": receiver.url, "campaign": "nope"})  # fmt: skip
    assert unknown.status_code == 404
    created = client.post("/api/v1/webhooks", headers=auth(admin),
                          json={"url": receiver.url, "events": ["paid"]}).get_json()  # fmt: skip
    receiver.secret = created["secret"]
    with ctx.db.session() as session:
        events.record(session, _debtor(session, "A-3"), "paid")
    result = CliRunner().invoke(cli, ["webhooks", "deliver"])
    assert result.exit_code == 0, result.output
    assert "1 deliveries queued" in result.output and "delivered 1" in result.output
    assert [e["reference"] for e in receiver.received] == ["A-3"]
    gone = client.delete(f"/api/v1/webhooks/{created['id']}", headers=auth(admin))
    assert gone.status_code == 204
    assert (
        client.delete(f"/api/v1/webhooks/{created['id']}", headers=auth(admin)).status_code == 404
    )
    assert client.get("/api/v1/webhooks", headers=auth(admin)).get_json() == {"webhooks": []}
    with ctx.db.session() as session:
        actions = session.scalars(select(AuditLog.action)).all()
    assert {"webhook.create", "webhook.delete"} <= set(actions)
