"""Collection KPIs and marketing rates computed by hand on a small campaign."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.payments.models import Payment
from kindly.reporting.kpis import campaign_kpis
from kindly.reporting.metrics import campaign_report
from kindly.rules.stats import wilson
from kindly.tracking import events
from tests.support.app import load_campaign


def pay(session, campaign_id: int, debtor: Debtor, minor: int, ref: str) -> None:
    session.add(
        Payment(
            campaign_id=campaign_id,
            debtor_id=debtor.id,
            provider="sandbox",
            provider_ref=ref,
            amount_minor=minor,
            currency=debtor.currency,
            status="succeeded",
        )
    )


def test_cei_and_add_by_hand(ctx):
    campaign_id = load_campaign(ctx)  # EUR: A-1 1234.56 due 2026-12-15, A-3 42.00 due 2027-01-10
    with ctx.db.session() as session:
        a1 = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        pay(session, campaign_id, a1, 34_56, "p1")  # 1200.00 left on A-1
    with ctx.db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        kpis = {
            (k.key, k.currency): k
            for k in campaign_kpis(session, campaign, today=dt.date(2027, 1, 20))
        }
    # CEI = collected / owed at import = 34.56 / 1276.56
    assert round(kpis["cei", "EUR"].value, 3) == round(3456 / 127656 * 100, 3)
    # ADD = (1200.00 × 36 days + 42.00 × 10 days) / 1242.00
    assert kpis["add", "EUR"].value == (120000 * 36 + 4200 * 10) / 124200
    assert kpis["dso", "EUR"].value is None
    assert "credit sales" in kpis["dso", "EUR"].convention
    # GBP has nothing paid and is not yet due on that day? 2026-12-20: 31 days past due.
    assert kpis["add", "GBP"].value == 31
    assert kpis["cei", "GBP"].value == 0


def test_settled_claims_drop_out_of_add(ctx):
    campaign_id = load_campaign(ctx)
    with ctx.db.session() as session:
        for debtor in session.scalars(select(Debtor).where(Debtor.currency == "GBP")):
            pay(session, campaign_id, debtor, debtor.amount_due_minor, "g1")
    with ctx.db.session() as session:
        kpis = {
            (k.key, k.currency): k
            for k in campaign_kpis(session, session.get(Campaign, campaign_id))
        }
    assert kpis["add", "GBP"].value is None  # nothing open: no average to take
    assert kpis["cei", "GBP"].value == 100


def test_rates_count_distinct_people_and_say_when_undefined(ctx):
    campaign_id = load_campaign(ctx)
    with ctx.db.session() as session:
        a1, a2, a3 = session.scalars(select(Debtor).order_by(Debtor.reference)).all()
        for debtor in (a1, a2, a3):
            events.record(session, debtor, "sent", channel="email")
            events.record(session, debtor, "delivered", channel="email")
        events.record(session, a1, "opened")
        events.record(session, a1, "opened")  # twice: still one debtor
        events.record(session, a2, "opened", agent="automated")  # a privacy proxy
        events.record(session, a1, "payment_started")
        events.record(session, a2, "payment_started")
        events.record(session, a1, "paid")
        pay(session, campaign_id, a1, a1.amount_due_minor, "x")
    with ctx.db.session() as session:
        report = campaign_report(session, session.get(Campaign, campaign_id))
    rates = {r.key: r for r in report["rates"]}
    assert (rates["open"].numerator, rates["open"].denominator) == (1, 3)
    assert rates["payment_success"].value == 0.5
    assert rates["payment_abandonment"].value == 0.5
    assert rates["bounce_hard"].value == 0
    assert rates["pay_page_conversion"].value is None  # nobody opened the pay page
    opened = next(s for s in report["funnel"] if s["step"] == "opened")
    assert (opened["human"], opened["raw"]) == (1, 2)
    assert report["money"]["collected_minor"] == {"EUR": 123456}
    variant = report["splits"]["variant"][0]
    assert (variant["value"], variant["debtors"], variant["paid"]) == ("A", 3, 1)


def test_wilson_interval_by_hand():
    # p = 0.12, z = 1.96: centre = (0.12 + 0.0019208) / 1.0038416 = 0.121454,
    # half = 1.96 × √(0.1056e-3 + 0.96e-6) / 1.0038416 = 0.020155
    low, high = wilson(120, 1000)
    assert (round(low, 4), round(high, 4)) == (0.1013, 0.1416)
    # the dashboard uses the experiments' interval: with nobody observed, any share is possible
    assert wilson(0, 0) == (0.0, 1.0)
