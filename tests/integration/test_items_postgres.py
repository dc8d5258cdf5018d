"""Items on PostgreSQL: the import (COPY path) with item rows and a re-import that closes
one, Select & Pay booked through the sandbox's webhook, and bank transfers quoting an item's
own RF reference matched to that item (the importer's one-statement path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from kindly.campaigns.items import Item, PaymentItem
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import import_portfolio, read_portfolio
from kindly.claims.balance import balance_minor
from kindly.claims.items import choose, items_of, link_payment, open_items
from kindly.payments import provider_events
from kindly.payments import service as payments
from kindly.payments.models import Payment
from kindly.reconciliation.importer import import_statement
from tests.support import bankfiles as bf
from tests.support.app import installed, load_campaign, make_settings

IBAN = "DE02120300000000202051"
PORTFOLIO = (
    "reference,first_name,last_name,currency,due_date,item_id,item_date,item_description,"
    "amount_due\n"
    "P-1,Erika,Mustermann,EUR,2026-11-15,A,2026-09-01,Abo September,30.00\n"
    "P-1,Erika,Mustermann,EUR,2026-11-15,B,2026-10-01,Abo Oktober,45.50\n"
    "P-1,Erika,Mustermann,EUR,2026-11-15,C,2026-11-01,Abo November,24.50\n"
    "P-2,Max,Müller,EUR,2026-11-15,,,,80.00\n"
)


@pytest.fixture
def books(tmp_path, postgres_url):
    settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url)
    with installed(settings) as ctx:
        load_campaign(ctx, "winter", PORTFOLIO)
        yield ctx


def erika(session) -> Debtor:
    return session.scalar(select(Debtor).where(Debtor.reference == "P-1"))


def items(session) -> dict[str, Item]:
    return {i.item_id: i for i in session.scalars(select(Item))}


def test_the_copy_import_writes_items_and_a_reimport_closes_the_missing_one(books):
    with books.db.session() as session:
        assert erika(session).amount_due_minor == 10000
        assert sorted(items(session)) == ["A", "B", "C"]
        campaign = session.scalar(select(Campaign))
        again = PORTFOLIO.replace(
            "P-1,Erika,Mustermann,EUR,2026-11-15,C,2026-11-01,Abo November,24.50\n", ""
        ).replace("Abo Oktober,45.50", "Abo Oktober,40.00")
        result, _ = import_portfolio(session, campaign, read_portfolio(again.encode(), "p.csv"))
        assert (result.items.added, result.items.updated, result.items.closed) == (0, 1, 1)
    with books.db.session() as session:
        assert erika(session).amount_due_minor == 7000
        assert items(session)["C"].status == "closed"
        assert [i.item_id for i in open_items(session, [erika(session).id])[erika(session).id]] == [
            "A", "B"]  # fmt: skip


def test_select_and_pay_is_booked_when_the_provider_says_so(books):
    with books.db.session() as session:
        debtor = erika(session)
        picked = choose(session, debtor, [str(items(session)["B"].id)])
        provider = payments.SandboxProvider("http://127.0.0.1")
        payment, _ = payments.start_payment(
            session, debtor, provider, base_url="http://127.0.0.1", amount_minor=4550,
            decided_methods=None, minimum=False, balance_minor=balance_minor(session, debtor),
        )  # fmt: skip
        link_payment(session, payment, picked)
        payment_id = payment.id
    with books.db.session() as session:
        payment = session.get(Payment, payment_id)
        assert {i.item_id: i.state for i in items_of(session, [payment.debtor_id])[
            payment.debtor_id]}["B"] == "open"  # fmt: skip
        payments.settle_payment(session, payment, "succeeded")
    with books.db.session() as session:
        debtor = erika(session)
        states = {i.item_id: i.state for i in items_of(session, [debtor.id])[debtor.id]}
        assert states == {"A": "open", "B": "paid", "C": "open"}
        assert debtor.amount_due_minor == 10000
        assert balance_minor(session, debtor) == 5450
    assert provider_events  # the webhook path is the sandbox test's (tests/unit)


def test_a_transfer_quoting_an_items_reference_pays_that_item(books):
    with books.db.session() as session:
        b, c = items(session)["B"], items(session)["C"]
        typed = " ".join(c.payment_reference[i : i + 4] for i in range(0, 25, 4)).lower()
        statement = bf.camt053([
            bf.Payment("Erika Mustermann", IBAN, "45.50", reference=b.payment_reference),
            bf.Payment("E. Mustermann", IBAN, "10.00", remittance=f"Abo Nov {typed} danke"),
        ])  # fmt: skip
        result = import_statement(session, books.storage, statement, "dec.xml")
        assert result.matched == 2
    with books.db.session() as session:
        debtor = erika(session)
        links = {(link.item_id, link.amount_minor) for link in session.scalars(select(PaymentItem))}
        assert links == {(items(session)["B"].id, 4550), (items(session)["C"].id, 1000)}
        states = {i.item_id: (i.state, i.paid_minor) for i in items_of(session, [debtor.id])[
            debtor.id]}  # fmt: skip
        # B is paid; C got 10.00 of its 24.50 and stays open with 14.50 to pay
        assert states == {"A": ("open", 0), "B": ("paid", 4550), "C": ("open", 1000)}
        assert balance_minor(session, debtor) == 10000 - 4550 - 1000
