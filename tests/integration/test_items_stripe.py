"""Select & Pay through Stripe (against the local API stub): the checkout is opened for the
chosen items' sum, and the webhook, however often it comes, makes exactly those items paid."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest
from sqlalchemy import select

from kindly.campaigns.items import Item
from kindly.campaigns.models import Debtor
from kindly.claims.balance import balance_minor
from kindly.claims.items import items_of
from kindly.payments.models import Payment
from tests.integration.test_stripe_payments import SECRET, Stub, csrf, deliver, session_obj
from tests.support.app import front_client, installed, load_campaign, make_settings
from tests.unit.test_select_and_pay import PORTFOLIO

pytestmark = pytest.mark.integration


@pytest.fixture
def stripe(tmp_path):
    Stub.requests, Stub.declines, Stub.answered = [], [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = make_settings(
        tmp_path / "var",
        KINDLY_STRIPE_SECRET_KEY="sk_test_kindly",
        KINDLY_STRIPE_WEBHOOK_SECRET=SECRET,
        KINDLY_STRIPE_API_BASE=f"http://127.0.0.1:{server.server_address[1]}",
    )
    with installed(settings) as context:
        load_campaign(context, "winter", PORTFOLIO)
        yield context, front_client(context, user_agent="Mozilla/5.0 (Android 14) Mobile Safari")
    server.shutdown()
    server.server_close()


def test_stripe_checkout_for_two_of_three_items_pays_exactly_those(stripe):
    context, client = stripe
    with context.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "S-1"))
        ids = {i.item_id: i.id for i in session.scalars(select(Item))}
    form = client.get(f"/s/{token}/items").get_data(as_text=True)
    answer = client.post(
        f"/s/{token}/items",
        data={"csrf_token": csrf(form), "item": [str(ids["R-1"]), str(ids["R-3"])]},
    )
    assert answer.headers["Location"] == "https://checkout.stripe.com/c/pay/cs_test_0001"
    assert Stub.requests[0]["form"]["line_items[0][price_data][unit_amount]"] == "5450"
    for event in ("evt_1", "evt_1", "evt_2"):  # repeated, and once more under another id
        deliver(client, event, "checkout.session.completed", session_obj("cs_test_0001", 5450))
    deliver(client, "evt_3", "checkout.session.async_payment_failed",
            session_obj("cs_test_0001", 5450, payment_status="unpaid"))  # fmt: skip
    with context.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "S-1"))
        states = {i.item_id: i.state for i in items_of(session, [anna.id])[anna.id]}
        assert states == {"R-1": "paid", "R-2": "open", "R-3": "paid"}
        assert session.scalars(select(Payment)).one().status == "succeeded"
        assert balance_minor(session, anna) == 10000 - 5450
