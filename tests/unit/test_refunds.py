"""Overpayments handed back: listed once from the ledger with the payer's account, approved,
paid out by a pain.001 that validates and parses, booked exactly once (SQLite, real files)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import func, select

from kindly import privacy
from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Debtor
from kindly.claims import balance as claims_balance
from kindly.creditors.service import set_creditor
from kindly.payments.models import Payment
from kindly.reconciliation.importer import import_statement
from kindly.refunds import sepa, service
from kindly.refunds.models import Refund, RefundExport
from tests.support import bankfiles as bf
from tests.support.app import load_campaign

HEADER = "reference,first_name,last_name,currency,amount_due,due_date,creditor,locale\n"
PORTFOLIO = HEADER + (
    "INV-1,Erika,Mustermann,EUR,57.30,2026-11-15,Stadtwerke Beispielstadt GmbH,de-DE\n"
    "INV-2,Max,Müller,EUR,120.00,2026-11-15,Stadtwerke Beispielstadt GmbH,de-DE\n"
    "INV-3,Giulia,Rossi,EUR,80.00,2026-11-15,Acqua Roma S.p.A.,it-IT\n"
    "INV-4,Jörg,Schäfer,EUR,99.00,2026-11-15,Stadtwerke Beispielstadt GmbH,de-DE\n"
)
ERIKA_IBAN = "DE02120300000000202051"
GIULIA_IBAN = "DE02500105170137075030"
STADTWERKE = {"iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX",
              "payee_name": "Stadtwerke Beispielstadt GmbH"}  # fmt: skip
ACQUA = {"iban": "IT60 X054 2811 1010 0000 0123 456", "bic": "BPMOIT22XXX"}
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
DAY = dt.date(2026, 12, 2)


@pytest.fixture
def world(ctx):
    load_campaign(ctx, "winter", PORTFOLIO)
    with ctx.db.session() as session:
        set_creditor(session, "Stadtwerke Beispielstadt GmbH", STADTWERKE)
        set_creditor(session, "Acqua Roma S.p.A.", ACQUA)
        debtors = {d.reference: d for d in session.scalars(select(Debtor))}
        yield ctx, session, debtors


def pay_in(ctx, session, *payments: bf.Payment, name: str = "dec.xml") -> None:
    import_statement(session, ctx.storage, bf.camt053(list(payments)), name)


def refunds(session) -> list[Refund]:
    return list(session.scalars(select(Refund).order_by(Refund.id)))


def overpay_erika(ctx, session, debtors, amount: str = "80.00", **extra) -> Debtor:
    erika = debtors["INV-1"]
    pay_in(ctx, session, bf.Payment("Erika Mustermann", ERIKA_IBAN, amount,
                                    reference=erika.payment_reference, **extra))  # fmt: skip
    return erika


def test_an_overpaid_case_is_listed_once_with_the_payers_account(world):
    ctx, session, debtors = world
    erika = overpay_erika(ctx, session, debtors)
    assert claims_balance.balance_minor(session, erika) == 0  # never below zero
    assert claims_balance.credit_minor(session, erika) == 2270
    assert service.sync(session) == 1
    assert service.sync(session) == 0  # listed once, however often it runs
    (refund,) = refunds(session)
    assert (refund.debtor_id, refund.amount_minor, refund.currency, refund.status) == (
        erika.id, 2270, "EUR", "due")  # fmt: skip
    assert (refund.way, refund.payer_iban, refund.payer_name) == (
        "transfer", ERIKA_IBAN, "Erika Mustermann")  # fmt: skip
    # a second overpayment raises the one refund that waits, it adds no second one
    pay_in(ctx, session, bf.Payment("Erika Mustermann", ERIKA_IBAN, "10.00",
                                    reference=erika.payment_reference, bank_ref="B-2"),
           name="dec2.xml")  # fmt: skip
    assert service.sync(session) == 1
    assert [(r.amount_minor, r.status) for r in refunds(session)] == [(3270, "due")]


def test_a_partial_payment_is_no_credit_and_a_card_overpayment_goes_back_by_card(world):
    ctx, session, debtors = world
    pay_in(ctx, session, bf.Payment("Max Müller", ERIKA_IBAN, "50.00",
                                    reference=debtors["INV-2"].payment_reference))  # fmt: skip
    jorg = debtors["INV-4"]
    session.add(Payment(campaign_id=jorg.campaign_id, debtor_id=jorg.id, provider="stripe",
                        provider_ref="cs_1", amount_minor=12000, currency="EUR",
                        status="succeeded"))  # fmt: skip
    session.flush()
    service.sync(session)
    (refund,) = refunds(session)
    assert (refund.debtor_id, refund.amount_minor, refund.way, refund.payer_iban) == (
        jorg.id, 2100, "card", None)  # fmt: skip
    with pytest.raises(service.RefundError, match="card provider"):
        service.approve(session, refund, user=None, via="cli")
    assert sepa.export(session, user=None, via="cli").files == []
    # the provider refunds it (its webhook books the negative row): the refund is done
    session.add(Payment(campaign_id=jorg.campaign_id, debtor_id=jorg.id, provider="stripe",
                        provider_ref="re_1", amount_minor=-2100, currency="EUR",
                        status="succeeded", kind="refund"))  # fmt: skip
    session.flush()
    service.sync(session)
    assert (refund.status, refund.note) == ("done", "refunded through the card provider")
    assert len(refunds(session)) == 1


def parse(document: bytes):
    return etree.fromstring(document)


def test_approve_then_export_writes_a_valid_pain001_and_books_the_refund_once(world):
    ctx, session, debtors = world
    erika = overpay_erika(ctx, session, debtors)
    giulia = debtors["INV-3"]
    pay_in(ctx, session, bf.Payment("Giulia Rossi", GIULIA_IBAN, "100.00", bic="COLSDE33XXX",
                                    reference=giulia.payment_reference, bank_ref="G-1"),
           name="dec2.xml")  # fmt: skip
    service.sync(session)
    first, second = refunds(session)
    assert sepa.export(session, user=None, via="cli").files == []  # nothing approved yet
    service.approve(session, first, user=None, via="cli")
    service.approve(session, second, user=None, via="cli")
    with pytest.raises(service.RefundError, match="not due"):
        service.approve(session, first, user=None, via="cli")

    result = sepa.export(session, user=None, via="cli", today=DAY)
    assert result.held == []
    by_account = {f.export.account_iban: f for f in result.files}
    assert set(by_account) == {"DE89370400440532013000", "IT60X0542811101000000123456"}
    stadtwerke = parse(by_account["DE89370400440532013000"].document)
    assert stadtwerke.xpath("//p:PmtInf/p:DbtrAcct/p:Id/p:IBAN/text()", namespaces=NS) == [
        "DE89370400440532013000"]  # fmt: skip
    assert stadtwerke.xpath("//p:DbtrAgt//p:BICFI/text()", namespaces=NS) == ["COBADEFFXXX"]
    (tx,) = stadtwerke.xpath("//p:CdtTrfTxInf", namespaces=NS)
    amount = tx.find("p:Amt/p:InstdAmt", NS)
    assert (Decimal(amount.text), amount.get("Ccy")) == (Decimal("22.70"), "EUR")
    assert tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == ERIKA_IBAN
    assert tx.findtext("p:Cdtr/p:Nm", namespaces=NS) == "Erika Mustermann"
    assert (
        tx.findtext("p:RmtInf/p:Ustrd", namespaces=NS)
        == "Erstattung Ihrer Uberzahlung, Referenz INV-1"
    )
    assert stadtwerke.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "22.70"
    assert stadtwerke.xpath("//p:ReqdExctnDt/p:Dt/text()", namespaces=NS) == ["2026-12-02"]
    roma = parse(by_account["IT60X0542811101000000123456"].document)
    (giulia_tx,) = roma.xpath("//p:CdtTrfTxInf", namespaces=NS)
    assert giulia_tx.findtext("p:CdtrAgt//p:BICFI", namespaces=NS) == "COLSDE33XXX"
    assert "Rimborso del suo pagamento" in giulia_tx.findtext("p:RmtInf/p:Ustrd", namespaces=NS)
    ids = [e.text for doc in (stadtwerke, roma) for e in doc.iter(f"{{{NS['p']}}}EndToEndId")]
    assert ids == [f"KINDLY-RFD-{first.id}", f"KINDLY-RFD-{second.id}"]

    booked = session.scalars(select(Payment).where(Payment.kind == "refund")).all()
    assert sorted((p.debtor_id, p.amount_minor) for p in booked) == sorted(
        [(erika.id, -2270), (giulia.id, -2000)])  # fmt: skip
    assert all(p.status == "succeeded" and p.method == "bank_transfer" for p in booked)
    for debtor in (erika, giulia):
        assert (
            claims_balance.balance_minor(session, debtor),
            claims_balance.credit_minor(session, debtor),
        ) == (
            0,
            0,
        )
    assert {r.status for r in refunds(session)} == {"exported"}
    assert session.scalar(select(func.count(RefundExport.id))) == 2

    again = sepa.export(session, user=None, via="cli", today=DAY)
    assert again.files == [] and service.sync(session) == 0
    assert session.scalar(select(func.count(Payment.id)).where(Payment.kind == "refund")) == 2
    assert len(refunds(session)) == 2
    actions = session.scalars(select(AuditLog.action)).all()
    assert actions.count("refund.approve") == 2 and actions.count("refund.export") == 2


def test_a_credit_that_went_away_cancels_what_waits(world):
    ctx, session, debtors = world
    erika = overpay_erika(ctx, session, debtors)
    service.sync(session)
    (refund,) = refunds(session)
    service.approve(session, refund, user=None, via="cli")
    erika.amount_due_minor = 8000  # the claim was higher than imported: nothing to hand back
    session.flush()
    assert sepa.export(session, user=None, via="cli").files == []
    assert (refund.status, refund.note) == ("canceled", "the credit went away before it was paid")
    assert session.scalar(select(func.count(Payment.id)).where(Payment.kind == "refund")) == 0


def test_a_refund_without_a_creditor_account_is_held_and_changes_nothing(world):
    ctx, session, debtors = world
    set_creditor(session, "Stadtwerke Beispielstadt GmbH", {"iban": "", "bic": ""})
    overpay_erika(ctx, session, debtors)
    service.sync(session)
    (refund,) = refunds(session)
    service.approve(session, refund, user=None, via="cli")
    result = sepa.export(session, user=None, via="cli")
    assert result.files == [] and result.held == [
        (refund.id, "the creditor's profile has no account (IBAN) to pay from")]  # fmt: skip
    assert refund.status == "approved"


def test_a_debtors_export_lists_their_refunds_and_erasing_forgets_the_payer(world):
    ctx, session, debtors = world
    erika = overpay_erika(ctx, session, debtors)
    service.sync(session)
    exported = privacy.export_debtor(session, erika.campaign, erika)
    assert [(r["amount_minor"], r["payer_iban"]) for r in exported["refunds"]] == [
        (2270, ERIKA_IBAN)]  # fmt: skip
    privacy.erase_debtor(session, erika, None)
    (refund,) = refunds(session)
    assert (refund.amount_minor, refund.payer_iban, refund.payer_name) == (2270, None, None)
    with pytest.raises(service.RefundError, match="no account"):
        service.approve(session, refund, user=None, via="cli")


def test_a_document_that_does_not_validate_is_refused_and_changes_nothing(world):
    ctx, session, debtors = world
    overpay_erika(ctx, session, debtors)
    service.sync(session)
    (refund,) = refunds(session)
    service.approve(session, refund, user=None, via="cli")
    refund.payer_name = "\U0001f642"  # nothing left of it in the SEPA character set
    session.commit()
    with pytest.raises(service.RefundError, match=r"does not validate .*Path: .*/Cdtr/Nm"):
        sepa.export(session, user=None, via="cli")
    session.rollback()  # as the command and the page do
    (refund,) = refunds(session)
    assert (refund.status, refund.end_to_end_id) == ("approved", None)
    assert session.scalar(select(func.count(RefundExport.id))) == 0
