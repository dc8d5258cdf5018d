"""Interest for many debtors on PostgreSQL (issue 19): one bulk read in a fixed number of
statements, whatever the number of debtors, with every debtor's own payments and plans."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, select

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import cases_for
from kindly.claims import accrual
from kindly.claims.amount import amounts_on
from kindly.payments.models import Payment, Plan
from kindly.rules.store import save_rules
from kindly.rules.validate import parse_rules
from tests.support.app import installed, load_campaign, make_settings

MANY = 3000
DAY = dt.date(2024, 8, 15)
HEADER = "reference,first_name,last_name,currency,amount_due,due_date\n"
PORTFOLIO = HEADER + "".join(
    f"M-{n:05d},Vorname{n},Nachname{n},EUR,1000.00,2024-05-15\n" for n in range(MANY)
)


@pytest.fixture
def many(tmp_path, postgres_url):
    settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url)
    with installed(settings) as ctx:
        load_campaign(ctx, "viele", PORTFOLIO)
        with ctx.db.session() as session:
            campaign = session.scalar(select(Campaign).where(Campaign.slug == "viele"))
            save_rules(session, campaign, parse_rules({"interest": {"basis": "statutory"}}))
            debtors = session.scalars(select(Debtor).order_by(Debtor.reference)).all()
            for debtor in debtors[:100]:  # the first 100 pay half on 1 July
                session.add(Payment(campaign_id=campaign.id, debtor_id=debtor.id,
                                    provider="bank", provider_ref=f"e-{debtor.id}",
                                    amount_minor=50_000, currency="EUR", status="succeeded",
                                    received_on=dt.date(2024, 7, 1)))  # fmt: skip
            for debtor in debtors[100:150]:
                session.add(Plan(campaign_id=campaign.id, debtor_id=debtor.id, currency="EUR",
                                 total_minor=101_086, frequency="monthly", count=3,
                                 status="active",
                                 agreed_at=dt.datetime(2024, 6, 30, 8, tzinfo=dt.UTC)))  # fmt: skip
        yield ctx


@contextmanager
def counted(engine):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_bulk_read_costs_the_same_few_statements_for_3000_debtors_as_for_3(many):
    ctx = many
    with ctx.db.session() as session:
        debtors = session.scalars(select(Debtor).order_by(Debtor.reference)).all()
        assert debtors[0].campaign.slug == "viele"  # loaded once per campaign, as callers have
        with counted(ctx.db.engine) as few:
            small = accrual.accrued_minor(session, debtors[:3], DAY)
        with counted(ctx.db.engine) as all_of_them:
            accrued = accrual.accrued_minor(session, debtors, DAY)
        # rules, rates, payments, write-offs, plans, open dispute holds, items (and what paid
        # them): a fixed few, whatever the number of debtors
        assert len(all_of_them) == len(few) <= 8, all_of_them
        assert small == {d.id: accrued[d.id] for d in debtors[:3]}
        # example 1 of docs/payments.md for those who paid nothing and agreed nothing
        assert {accrued[d.id] for d in debtors[150:]} == {2141}
        # half paid on 1 July: 46 days on 1,000.00 at 8.62 % = 10.86, then 1 July at 8.37 %
        # = 0.23; the 500.00 pays 11.09 interest and 488.91 principal; 511.09 then bears 45
        # days at 8.37 % = 5.27
        assert {accrued[d.id] for d in debtors[:100]} == {1086 + 23 + 527}
        assert {accrued[d.id] for d in debtors[100:150]} == {1086}  # the plan defers it
        owed = amounts_on(session, debtors, DAY)
        assert owed[debtors[0].id].total_minor == 100_000 + 1636
        cases = cases_for(session, debtors, DAY)
        assert cases[debtors[0].id].balance_minor == 100_000 + 1636 - 50_000
        assert cases[debtors[-1].id].balance_minor == 102_141
