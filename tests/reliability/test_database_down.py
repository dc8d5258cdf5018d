"""PostgreSQL down (a URL nobody answers on; the shared server is never stopped): payment
webhooks answer 5xx so the provider retries them, and the retry once it is back applies the
payment exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from kindly.core import pay_webhooks
from kindly.core.context import Context
from kindly.core.models import Debtor, Payment
from tests.conftest import load_campaign, make_settings
from tests.reliability.conftest import DOWN

pytestmark = pytest.mark.integration
SECRET = "whsec_down_0123456789"


def front(settings):
    """The app as gunicorn runs it (not TESTING: errors become pages, not exceptions)."""
    from kindly.web import create_app

    app = create_app(settings)
    app.extensions["kindly"] = Context(settings)
    return app.test_client()


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
            headers={"Stripe-Signature": pay_webhooks.sign(payload, SECRET)},
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
            headers={"Stripe-Signature": pay_webhooks.sign(payload, SECRET)},
        )
        assert answer.status_code == 200
    with context.db.session() as session:
        assert session.get(Payment, payment_id).status == "succeeded"
        rows = session.scalars(select(Payment).where(Payment.status == "succeeded")).all()
    assert len(rows) == 1


@pytest.mark.xfail(
    strict=True,
    reason="the microsite reads the debtor from the database; serving it from storage while "
    "PostgreSQL is down is not built yet (web/public.py)",
)
def test_the_microsite_is_served_from_storage_while_the_database_is_down(tmp_path, postgres_url):
    from kindly.core import context as context_module
    from kindly.workers.jobs import render_debtor

    up = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url)
    context = Context(up)
    context.db.migrate()
    context.storage.ensure()
    load_campaign(context)
    context_module.use(context)
    try:
        with context.db.session() as session:
            debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
            token, debtor_id = debtor.token, debtor.id
        render_debtor(debtor_id, ["site"])
        client = front(make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=DOWN))
        page = client.get(f"/s/{token}")
    finally:
        context_module.use(None)
    assert page.status_code == 200
    assert "Müller" in page.get_data(as_text=True)
