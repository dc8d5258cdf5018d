"""Stripe: the real library against a local stub of its API, and signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.payments.models import Payment
from kindly.reporting.metrics import campaign_stats
from tests.support.app import front_client, installed, load_campaign, make_settings

pytestmark = pytest.mark.integration
WEBHOOK_SECRET = "whsec_test_0123456789abcdef"


class StripeStub(BaseHTTPRequestHandler):
    """Answers POST /v1/checkout/sessions like Stripe does, and remembers each request."""

    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        StripeStub.requests.append(
            {"path": self.path, "form": form, "idempotency": self.headers.get("Idempotency-Key"),
             "auth": self.headers.get("Authorization")}
        )  # fmt: skip
        session_id = f"cs_test_{len(StripeStub.requests):04d}"
        answer = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
            "currency": form["line_items[0][price_data][currency]"],
            "payment_status": "unpaid",
            "status": "open",
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stripe_api():
    StripeStub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StripeStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def stripe_app(tmp_path, stripe_api):

    settings = make_settings(
        tmp_path / "var",
        KINDLY_STRIPE_SECRET_KEY="sk_test_kindly",
        KINDLY_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        KINDLY_STRIPE_API_BASE=stripe_api,
    )
    with installed(settings) as context:
        load_campaign(context)
        yield context, front_client(context, user_agent="Mozilla/5.0 (Android 14) Mobile Safari")


def signed(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A Stripe-Signature header as Stripe computes it."""
    timestamp = at or int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def completed_event(session_id: str, event_id: str = "evt_1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "checkout.session.completed",
            "data": {
                "object": {"id": session_id, "object": "checkout.session", "payment_status": "paid"}
            },
        }
    ).encode()


def start_checkout(client, context) -> tuple[str, str]:
    with context.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    form = client.get(f"/s/{token}/pay").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = client.post(f"/s/{token}/pay", data={"csrf_token": csrf})
    return token, response.headers["Location"]


def collected(context) -> dict:
    with context.db.session() as session:
        return campaign_stats(session, session.scalar(select(Campaign)))["collected"]


def test_checkout_session_carries_amount_currency_urls_and_metadata(stripe_app):
    context, client = stripe_app
    token, location = start_checkout(client, context)
    assert location == "https://checkout.stripe.com/c/pay/cs_test_0001"
    [request] = StripeStub.requests
    form = request["form"]
    assert request["path"] == "/v1/checkout/sessions"
    assert request["auth"] == "Bearer sk_test_kindly"
    assert request["idempotency"].startswith("kindly-")
    assert form["mode"] == "payment"
    assert form["line_items[0][price_data][unit_amount]"] == "123456"
    assert form["line_items[0][price_data][currency]"] == "eur"
    assert form["success_url"] == f"http://127.0.0.1:5000/s/{token}?payment=succeeded"
    assert form["cancel_url"] == f"http://127.0.0.1:5000/s/{token}?payment=canceled"
    assert form["metadata[debtor_id]"] and form["metadata[campaign_id]"]
    with context.db.session() as session:
        payment = session.scalar(select(Payment))
        assert (payment.provider, payment.provider_ref, payment.status) == (
            "stripe",
            "cs_test_0001",
            "started",
        )


def test_signed_webhook_settles_once_even_when_delivered_twice(stripe_app):
    context, client = stripe_app
    start_checkout(client, context)
    payload = completed_event("cs_test_0001")
    for _ in range(2):
        response = client.post("/webhooks/stripe", data=payload,
                               headers={"Stripe-Signature": signed(payload), "Content-Type": "application/json"})  # fmt: skip
        assert response.status_code == 200
    assert collected(context) == {"EUR": "1234.56"}


@pytest.mark.parametrize(
    "header",
    [
        lambda p: signed(p, secret="whsec_wrong"),
        lambda p: signed(p, at=int(time.time()) - 3600),  # replayed an hour later
        lambda p: "",
    ],
    ids=["wrong-secret", "too-old", "missing"],
)
def test_bad_webhook_signature_gets_400_and_changes_nothing(stripe_app, header):
    context, client = stripe_app
    start_checkout(client, context)
    payload = completed_event("cs_test_0001")
    response = client.post(
        "/webhooks/stripe", data=payload, headers={"Stripe-Signature": header(payload)}
    )
    assert response.status_code == 400
    assert collected(context) == {}


@pytest.mark.parametrize("payload", [b"null", b"[]", b'"evt"', b"{}", b'{"id": "evt_9"}'])
def test_a_signed_body_that_is_no_event_gets_400(stripe_app, payload):
    context, client = stripe_app
    response = client.post("/webhooks/stripe", data=payload,
                           headers={"Stripe-Signature": signed(payload)})  # fmt: skip
    assert response.status_code == 400  # a signed `null` was a 500 (found by hypothesis)
    assert collected(context) == {}


def test_sandbox_checkout_is_closed_when_stripe_is_configured(stripe_app):
    _, client = stripe_app
    assert client.get("/sandbox/checkout/sbx_" + "a" * 24).status_code == 404
