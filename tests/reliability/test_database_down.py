"""PostgreSQL down (a URL nobody answers on; the shared server is never stopped): payment
webhooks answer 5xx so the provider retries them, and the retry once it is back applies the
payment exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.context import Context
from kindly.payments import provider_events
from kindly.payments.models import Payment
from tests.reliability.conftest import DOWN
from tests.support.app import front_client, load_campaign, make_settings

pytestmark = pytest.mark.integration
SECRET = "whsec_down_0123456789"


def front(settings):
    """The app as gunicorn runs it (not TESTING: errors become pages, not exceptions)."""
    return front_client(Context(settings))


def test_a_stripe_webhook_during_the_outage_gets_5xx_and_its_retry_settles_once(
    tmp_path, postgres_url
):
    env = {"KINDLY_STRIPE_WEBHOOK_SECRET": SECRET}
    up = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url, **env)
    context = Context(up)
    context.db.migrate()
    load_campaign(context)
    with context.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-2"))
        payment = Payment(
            campaign_id=debtor.campaign_id, debtor_id=debtor.id, provider="stripe",
            provider_ref="cs_test_down", amount_minor=8990, currency="GBP", status="started",
            kind="payment",
        )  # fmt: skip
        session.add(payment)
        session.flush()
        payment_id = payment.id
    payload = json.dumps({
        "id": "evt_down_1", "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_down", "object": "checkout.session",
                            "amount_total": 8990, "currency": "gbp", "payment_status": "paid",
                            "payment_intent": "pi_down",
                            "metadata": {"kindly_payment": str(payment_id)}}},
    }).encode()  # fmt: skip

    down = front(make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=DOWN, **env))
    for _ in range(3):  # Stripe retries; each try meets the outage
        answer = down.post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": provider_events.sign(payload, SECRET)},
        )
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
        assert b"Traceback" not in answer.data and b"OperationalError" not in answer.data
    with context.db.session() as session:
        assert session.get(Payment, payment_id).status == "started"

    back = front(up)  # the database is back; Stripe's next retry arrives, then a duplicate
    for _ in range(2):
        answer = back.post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": provider_events.sign(payload, SECRET)},
        )
        assert answer.status_code == 200
    with context.db.session() as session:
        assert session.get(Payment, payment_id).status == "succeeded"
        rows = session.scalars(select(Payment).where(Payment.status == "succeeded")).all()
    assert len(rows) == 1


def test_the_microsite_is_served_from_storage_while_the_database_is_down(
    tmp_path, postgres_url, redis_url
):
    from kindly import context as context_module
    from kindly.campaigns.models import Campaign
    from kindly.tracking.eventbuffer import Writer
    from kindly.tracking.models import Event
    from tests.reliability.conftest import PHONE, wait_for
    from workers.jobs import render_debtor

    up = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url,
                       KINDLY_REDIS_URL=redis_url)  # fmt: skip
    context = Context(up)
    context.db.migrate()
    context.storage.ensure()
    load_campaign(context)
    load_campaign(context, "gated")  # the same people, in a campaign behind a check
    context_module.use(context)
    try:
        with context.db.session() as session:
            session.scalar(select(Campaign).where(Campaign.slug == "gated")).settings = {
                "identity_check": "postal_code"
            }
            rows = session.execute(
                select(Campaign.slug, Debtor.reference, Debtor.token, Debtor.id)
                .join(Campaign).order_by(Debtor.id)
            ).all()  # fmt: skip
        tokens = {(slug, ref): token for slug, ref, token, _ in rows}
        for *_, debtor_id in rows:
            render_debtor(debtor_id, ["site"])
        tokens = {ref: token for (slug, ref), token in tokens.items() if slug == "winter"} | {
            "gated": tokens[("gated", "A-3")]
        }
        ids = [debtor_id for slug, ref, _, debtor_id in rows if slug == "winter"]

        down_settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=DOWN,
                                      KINDLY_REDIS_URL=redis_url)  # fmt: skip
        # the test drains the buffer itself: no writer thread in the front
        client = front_client(Context(down_settings), user_agent=PHONE, KINDLY_EVENT_WRITER=False)

        page = client.get(f"/s/{tokens['A-1']}")
        text = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "Müller" in text and "1.234,56" in text  # the stored page
        assert "Wir können neue Zahlungen und Änderungen gerade nicht anzeigen" in text
        assert client.get(f"/s/{tokens['A-2']}").status_code == 200

        gated = client.get(f"/s/{tokens['gated']}")  # its check can't be answered: nothing shown
        assert gated.status_code == 503 and "Giulia" not in gated.get_data(as_text=True)
        assert client.get("/s/" + "x" * 32).status_code == 503  # unknown: it tells nothing
        assert client.get(f"/s/{tokens['A-1']}/pay").status_code == 503  # paying needs it

        writer = Writer(context.event_buffer, context.db)  # the database is back
        writer.start()
        try:
            wait_for(lambda: context.event_buffer.waiting() == 0, 15, "the buffered views")
        finally:
            writer.stopping.set()
            writer.join(timeout=5)
        with context.db.session() as session:
            views = session.scalars(select(Event.debtor_id).where(Event.type == "viewed")).all()
        assert sorted(views) == sorted(ids[:2])  # each view kept, once
    finally:
        context_module.use(None)
