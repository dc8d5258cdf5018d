"""Paying approved refunds out: one SEPA credit-transfer file (pain.001) per creditor account,
each refund in it booked as a negative payment, exactly once.

The account the money leaves is the one the debtor paid into: the bank details of the debtor's
own creditor profile (kindly.creditors.profile). `sepaxml` writes the document and validates
it against the pain.001.001.09 schema it ships; a file that does not validate changes nothing.
Each refund gets an end-to-end id of its own (`KINDLY-RFD-<id>`), which the bank reports back
with the debit, and a refund leaves `approved` only here, under a row lock, so a second export
finds nothing to pay.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from sepaxml import SepaTransfer
from sepaxml.validation import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit
from kindly.accounts.models import User
from kindly.campaigns.models import Campaign, Debtor
from kindly.creditors.profile import creditor_for
from kindly.payments.iban import bic_error, compact, iban_error
from kindly.payments.models import Payment
from kindly.payments.service import record_reversal
from kindly.refunds.models import Refund, RefundExport
from kindly.refunds.service import RefundError, sync
from kindly.site.personalise import resolve_locale
from renderer.texts import load_texts

SCHEMA = "pain.001.001.09"
"""The SEPA credit-transfer initiation the EPC rulebook has asked for since November 2023."""
PROVIDER = "bank"
METHOD = "bank_transfer"


@dataclass
class ExportFile:
    """One written pain.001: its record, the document, and the refunds it pays."""

    export: RefundExport
    document: bytes
    refund_ids: list[int] = field(default_factory=list)


@dataclass
class ExportResult:
    """What an export wrote, and the approved refunds it had to leave for a person."""

    files: list[ExportFile] = field(default_factory=list)
    held: list[tuple[int, str]] = field(default_factory=list)  # (refund id, why)


def end_to_end_id(refund: Refund) -> str:
    """The refund's end-to-end id: unique, at most 35 characters, shown on the bank's debit."""
    return f"KINDLY-RFD-{refund.id}"


def remittance(debtor: Debtor, campaign: Campaign) -> str:
    """What the payer reads on their statement, in their language."""
    _, lang, _ = resolve_locale(debtor, campaign)
    text = load_texts("site").for_lang(lang)["refund_remittance"]
    return text.format(reference=debtor.reference)[:140]


def _why_held(refund: Refund, iban: str) -> str | None:
    if refund.currency != "EUR":
        return f"SEPA pays euro only, this refund is in {refund.currency}"
    if not iban:
        return "the creditor's profile has no account (IBAN) to pay from"
    if not refund.payer_iban or iban_error(refund.payer_iban):
        return "the payer's account (IBAN) is missing or invalid"
    return None


def export(
    session: Session,
    *,
    user: User | None,
    via: str,
    today: dt.date | None = None,
    campaign_ids: list[int] | None = None,
) -> ExportResult:
    """Write a pain.001 per creditor account for the approved refunds and book each one.

    `campaign_ids` narrows the refunds (a scoped manager's campaigns). The caller commits
    once the files are safe; a document that does not validate raises RefundError, and the
    caller's rollback leaves every refund as it was.
    """
    sync(session, campaign_ids)  # a credit that went away is not paid out
    query = select(Refund).where(Refund.status == "approved").order_by(Refund.id)
    if campaign_ids is not None:
        query = query.where(Refund.campaign_id.in_(campaign_ids))
    refunds = list(session.scalars(query.with_for_update()))
    result = ExportResult()
    groups: dict[tuple[str, str, str], list[tuple[Refund, Debtor]]] = {}
    for refund in refunds:
        debtor = session.get(Debtor, refund.debtor_id)
        assert debtor is not None
        profile = creditor_for(session, debtor)
        iban = compact(profile.iban or "")
        why = _why_held(refund, iban)
        if why is not None:
            result.held.append((refund.id, why))
            continue
        bic = compact(profile.bic or "") if not bic_error(profile.bic or "") else ""
        name = profile.payee_name or profile.name or "Kindly"
        groups.setdefault((iban, bic, name), []).append((refund, debtor))
    day = today or dt.date.today()
    actor = user.email if user else "operator"
    for (iban, bic, name), items in groups.items():
        document, msg_id = _document(iban, bic, name, items, day)
        record = RefundExport(
            msg_id=msg_id, account_iban=iban, account_bic=bic or None, account_name=name[:70],
            currency="EUR", count=len(items), total_minor=sum(r.amount_minor for r, _ in items),
            sha256=hashlib.sha256(document).hexdigest(), document=document.decode("utf-8"),
            created_by=actor,
        )  # fmt: skip
        session.add(record)
        session.flush()
        for refund, debtor in items:
            _book(session, refund, debtor, day)
            refund.status, refund.export_id = "exported", record.id
        audit.record(session, user, "refund.export", via=via, export=record.id, msg_id=msg_id,
                     refunds=[r.id for r, _ in items], total_minor=record.total_minor)  # fmt: skip
        result.files.append(ExportFile(record, document, [r.id for r, _ in items]))
    session.flush()
    return result


def _document(
    iban: str, bic: str, name: str, items: list[tuple[Refund, Debtor]], day: dt.date
) -> tuple[bytes, str]:
    """The validated pain.001 for one creditor account, and its message id."""
    config = {"name": name, "IBAN": iban, "batch": True, "currency": "EUR"}
    if bic:
        config["BIC"] = bic
    transfer = SepaTransfer(config, schema=SCHEMA)
    for refund, debtor in items:
        refund.end_to_end_id = end_to_end_id(refund)
        payment = {
            "name": refund.payer_name or f"{debtor.first_name or ''} {debtor.last_name}".strip(),
            "IBAN": compact(refund.payer_iban or ""),
            "amount": refund.amount_minor,
            "execution_date": day,
            "description": remittance(debtor, debtor.campaign),
            "endtoend_id": refund.end_to_end_id,
        }
        if refund.payer_bic and not bic_error(refund.payer_bic):
            payment["BIC"] = compact(refund.payer_bic)
        transfer.add_payment(payment)
    try:
        return transfer.export(validate=True), transfer.msg_id
    except ValidationError as error:
        lines = str(error.__cause__ or error).splitlines()
        where = next((line for line in lines if line.startswith("Path:")), "")
        reason = next((line for line in lines if line.startswith("Reason:")), lines[0])
        raise RefundError(
            f"the pain.001 for {iban} does not validate ({reason} {where}); nothing was exported"
        ) from None


def _book(session: Session, refund: Refund, debtor: Debtor, day: dt.date) -> Payment:
    """The money going back, as a negative `refund` payment keyed by the end-to-end id."""
    ref = f"refund:{refund.end_to_end_id}"
    source = session.get(Payment, refund.source_payment_id) if refund.source_payment_id else None
    if source is not None:
        row = record_reversal(session, source, kind="refund", ref=ref,
                              amount_minor=refund.amount_minor, currency=refund.currency,
                              status="succeeded")  # fmt: skip
    else:  # the overpaying payment is gone (erased): the refund is booked on its own
        row = Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id, provider=PROVIDER,
                      provider_ref=ref, amount_minor=-refund.amount_minor,
                      currency=refund.currency, status="succeeded", kind="refund")  # fmt: skip
        session.add(row)
    row.method, row.payer_iban, row.received_on = METHOD, refund.payer_iban, day
    session.flush()
    refund.booked_payment_id = row.id
    return row
