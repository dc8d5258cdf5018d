"""The books on PostgreSQL: a statement's transfers and payments made elsewhere in one ledger,
allocated costs first, reversed by counter-entries, exported and reported (real database)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import case_of
from kindly.claims import balance as claims_balance
from kindly.ledger import export, manual
from kindly.payments import allocation, ledger
from kindly.payments.models import Payment
from kindly.reconciliation.importer import import_statement
from kindly.reporting import bank
from tests.support import bankfiles as bf
from tests.support.app import installed, load_campaign, make_settings

IBAN = "DE02120300000000202051"
HEADER = "reference,first_name,last_name,currency,amount_due,principal,interest,fees,due_date\n"
PORTFOLIO = HEADER + (
    "K-1,Erika,Mustermann,EUR,150.00,100.00,20.00,30.00,2026-11-15\n"
    "K-2,Max,Müller,EUR,80.00,,,,2026-11-15\n"
)


@pytest.fixture
def books(tmp_path, postgres_url):
    settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url)
    with installed(settings) as ctx:
        load_campaign(ctx, "winter", PORTFOLIO)
        yield ctx


def test_transfers_and_payments_made_elsewhere_make_one_ledger(books):
    ctx = books
    with ctx.db.session() as session:
        erika = session.scalar(select(Debtor).where(Debtor.reference == "K-1"))
        statement = bf.camt053([
            bf.Payment("Erika Mustermann", IBAN, "40.00", reference=erika.payment_reference),
            bf.Payment("Unknown", "DE75512108001245126199", "9.99", remittance="?"),
            bf.Payment("Bank", IBAN, "2.50", credit=False, remittance="Gebühr"),
        ])  # fmt: skip
        result = import_statement(session, ctx.storage, statement, "dec.xml")
        assert (result.matched, result.unmatched, result.ignored) == (1, 1, 1)
    with ctx.db.session() as session:
        erika = session.scalar(select(Debtor).where(Debtor.reference == "K-1"))
        cash = manual.record(session, erika, "50.00", method="cash", on=dt.date(2026, 12, 1),
                             note="at the counter", user=None, via="test",
                             today=dt.date(2026, 12, 2))  # fmt: skip
        assert cash.status == "succeeded"
        assert allocation.open_parts(erika, ledger.paid_minor(session, erika)) == {
            "fees": 0, "interest": 0, "principal": 6000}  # fmt: skip
        assert case_of(session, erika).state == "partly_paid"
    with ctx.db.session() as session:
        erika = session.scalar(select(Debtor).where(Debtor.reference == "K-1"))
        rest = manual.record(session, erika, "60.00", method="cheque", on=dt.date(2026, 12, 2),
                             user=None, via="test", today=dt.date(2026, 12, 2))  # fmt: skip
        assert case_of(session, erika).state == "paid"
        manual.reverse(session, rest, note="cheque bounced", user=None, via="test",
                       today=dt.date(2026, 12, 2))  # fmt: skip
        assert case_of(session, erika).state == "partly_paid"
        with pytest.raises(manual.RecordError, match="not recorded by hand"):
            bank_payment = session.scalar(select(Payment).where(Payment.provider == "bank"))
            manual.reverse(session, bank_payment, note="x", user=None, via="test")

    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        handle = io.StringIO()
        export.write(handle, export.rows(session, campaign))
        rows = list(csv.DictReader(io.StringIO(handle.getvalue())))
        erika = session.scalar(select(Debtor).where(Debtor.reference == "K-1"))
        balance = claims_balance.balance_minor(session, erika)
        report = bank.report(session, bank.statements(session)[0])
    assert [(r["kind"], r["provider"], r["method"], r["amount"], r["fees"], r["interest"],
             r["principal"], r["balance_after"]) for r in rows] == [
        ("payment", "bank", "bank_transfer", "40.00", "30.00", "10.00", "0.00", "110.00"),
        ("payment", "manual", "cash", "50.00", "0.00", "10.00", "40.00", "60.00"),
        ("payment", "manual", "cheque", "60.00", "0.00", "0.00", "60.00", "0.00"),
        ("reversal", "manual", "cheque", "-60.00", "0.00", "0.00", "-60.00", "60.00"),
    ]  # fmt: skip
    assert rows[0]["payer_iban"] == IBAN  # in full: the file goes to the creditor
    assert sum(int(r["amount"].replace(".", "")) for r in rows) == 15000 - balance
    assert report["states"]["matched"] == {"entries": 1, "amounts": {"EUR": "40.00"}}
    assert report["states"]["unmatched"] == {"entries": 1, "amounts": {"EUR": "9.99"}}
    assert report["states"]["ignored"] == {"entries": 1, "amounts": {"EUR": "2.50"}}
    assert report["matched_by_rule"] == {"rf": {"entries": 1, "amounts": {"EUR": "40.00"}}}
    assert report["booked"] == {"EUR": {"payments": 1, "amount": "40.00"}}
