"""The microsite's fast path: a warm view costs one query, and the page it keeps per process
never hides what changed (a payment, a plan, a promise, the campaign's settings, a new
rendering, the link's age)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select

from kindly.campaigns.models import Campaign, Debtor
from kindly.infra.db import utcnow
from kindly.payments.models import Instalment, Payment, Plan
from kindly.tracking import events
from tests.support.app import load_campaign
from workers.jobs import render_debtor


class ListBuffer:
    """The event buffer's interface, keeping what it is given (no Redis needed)."""

    def __init__(self):
        self.events: list[dict] = []

    def add(self, event: dict) -> None:
        self.events.append(event)


@pytest.fixture
def site(client, ctx):
    """(client, token, debtor id) for A-1 with its stored page rendered."""
    load_campaign(ctx)
    with ctx.db.session() as session:
        debtor_id, token = session.execute(
            select(Debtor.id, Debtor.token).where(Debtor.reference == "A-1")
        ).one()
    render_debtor(debtor_id, ["site"])
    return client, token, debtor_id


def page(client, token: str) -> str:
    response = client.get(f"/s/{token}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_warm_view_costs_one_query_and_buffers_one_event(site, ctx):
    client, token, _ = site
    buffer = ListBuffer()
    ctx.__dict__["event_buffer"] = buffer  # as with Redis: hits are buffered, not written
    page(client, token)  # builds the page this process keeps
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(ctx.db.engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):
            assert "1.234,56\xa0€" in page(client, token)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", seen)
    assert len(statements) == 3  # one per view
    assert [e["type"] for e in buffer.events] == ["viewed"] * 4


def test_a_payment_shows_on_the_next_view_of_a_warm_page(site, ctx):
    client, token, debtor_id = site
    assert "Noch offen" not in page(client, token)
    with ctx.db.session() as session:
        debtor = session.get(Debtor, debtor_id)
        session.add(
            Payment(campaign_id=debtor.campaign_id, debtor_id=debtor_id, provider="sandbox",
                    provider_ref="p-1", amount_minor=23456, currency="EUR", status="succeeded")
        )  # fmt: skip
    html = page(client, token)
    assert "Vielen Dank für Ihre Zahlung von 234,56\xa0€." in html
    assert "Noch offen" in html and 'data-amount="100000"' in html
    with ctx.db.session() as session:
        payment = session.scalar(select(Payment))
        payment.amount_minor = 123456
    assert "Es ist nichts mehr offen" in page(client, token)


def test_a_plan_and_a_promise_show_on_the_next_view_of_a_warm_page(site, ctx):
    client, token, debtor_id = site
    page(client, token)
    when = dt.date.today() + dt.timedelta(days=5)
    with ctx.db.session() as session:
        debtor = session.get(Debtor, debtor_id)
        events.record(session, debtor, "promise", channel="web", data={"date": when.isoformat()})
    assert "Sie haben die Zahlung von 1.234,56\xa0€ zum" in page(client, token)
    with ctx.db.session() as session:
        plan = Plan(campaign_id=debtor.campaign_id, debtor_id=debtor_id, currency="EUR",
                    total_minor=123456, frequency="monthly", count=2)  # fmt: skip
        session.add(plan)
        session.flush()
        session.add_all(
            [
                Instalment(
                    plan_id=plan.id, seq=1, due_date=when, amount_minor=61728, status="paid"
                ),
                Instalment(plan_id=plan.id, seq=2, due_date=when, amount_minor=61728),
            ]
        )
    html = page(client, token)
    assert "Nächste Rate" in html and "617,28\xa0€" in html and "1 von 2 Raten" in html


def test_settings_and_a_new_rendering_reach_a_warm_page(site, ctx):
    client, token, debtor_id = site
    assert "Müller" in page(client, token)
    with ctx.db.session() as session:
        session.get(Debtor, debtor_id).last_name = "Schmidt"
    render_debtor(debtor_id, ["site"])
    assert "Schmidt" in page(client, token)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {**(campaign.settings or {}), "identity_check": "postal_code"}
    gate = client.get(f"/s/{token}")
    assert gate.status_code == 200
    assert "1.234,56" not in gate.get_data(as_text=True)  # the neutral form, nothing personal


def test_an_expired_or_unknown_link_is_refused_even_when_warm(site, ctx):
    client, token, debtor_id = site
    page(client, token)
    with ctx.db.session() as session:
        session.get(Debtor, debtor_id).created_at = utcnow() - dt.timedelta(days=91)
    assert client.get(f"/s/{token}").status_code == 410
    with ctx.db.session() as session:
        session.get(Debtor, debtor_id).token = "B" * 32
    assert client.get(f"/s/{token}").status_code == 404
