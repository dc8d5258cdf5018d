"""Refunds due, computed from the ledger: a case's credit (what was paid beyond the claim) is
listed once, to go back to whoever overpaid, and a manager approves it.

`sync` is safe to run at any time and as often as wanted: for each case the refunds still
waiting (due or approved) add up to its credit afterwards. A new overpayment raises the one
due refund of a case (or adds a refund once the earlier one was approved); a credit that went
away (a returned transfer, a higher claim) cancels what waits, due before approved. Exported
refunds are already booked as negative payments, so the credit no longer counts them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.accounts import audit
from kindly.accounts.models import User
from kindly.campaigns.models import Campaign, Debtor
from kindly.claims import balance
from kindly.errors import KindlyError
from kindly.infra.db import utcnow
from kindly.payments.models import Payment
from kindly.reconciliation.models import BankAllocation, BankEntry
from kindly.refunds.models import Refund

WAITING = ("due", "approved")
"""Refunds not yet paid out: they, and nothing else, still make up a case's credit."""
CARD_PROVIDERS = ("stripe", "sandbox")
"""Providers whose overpayments go back through the provider itself (card, SEPA debit)."""


class RefundError(KindlyError):
    """A refund cannot be changed as asked."""


@dataclass(frozen=True)
class Payer:
    """Who overpaid, and how the money goes back."""

    way: str  # transfer | card
    iban: str | None
    bic: str | None
    name: str | None
    payment_id: int | None


def _credits(session: Session, campaign_ids: Iterable[int] | None) -> dict[int, int]:
    """Every case paid beyond its claim: debtor id -> credit in minor units, in one query."""
    paid = func.sum(Payment.amount_minor)
    query = (
        select(Debtor.id, paid - Debtor.amount_due_minor)
        .join(Payment, Payment.debtor_id == Debtor.id)
        .where(Payment.status == "succeeded", Payment.currency == Debtor.currency)
        .group_by(Debtor.id, Debtor.amount_due_minor)
        .having(paid > Debtor.amount_due_minor)
    )
    if campaign_ids is not None:
        query = query.where(Debtor.campaign_id.in_(list(campaign_ids)))
    return {debtor_id: int(credit) for debtor_id, credit in session.execute(query)}


def payer_of(session: Session, debtor: Debtor) -> Payer:
    """The latest payment into the case and its payer: a bank transfer's account and name go
    back by transfer; a card provider's payment is refunded by that provider."""
    payment = session.scalar(
        select(Payment)
        .where(
            Payment.debtor_id == debtor.id,
            Payment.status == "succeeded",
            Payment.amount_minor > 0,
            Payment.currency == debtor.currency,
        )
        .order_by(Payment.id.desc())
        .limit(1)
    )
    if payment is None:
        return Payer("transfer", None, None, None, None)
    if payment.provider in CARD_PROVIDERS:
        return Payer("card", None, None, None, payment.id)
    entry = session.scalar(
        select(BankEntry)
        .join(BankAllocation, BankAllocation.entry_id == BankEntry.id)
        .where(BankAllocation.payment_id == payment.id)
    )
    name = entry.counterparty_name if entry is not None else None
    bic = entry.counterparty_bic if entry is not None else None
    return Payer("transfer", payment.payer_iban, bic, name, payment.id)


def sync(session: Session, campaign_ids: Iterable[int] | None = None) -> int:
    """List every credit once as a refund; returns how many refunds changed or were added."""
    ids = None if campaign_ids is None else list(campaign_ids)
    credits = _credits(session, ids)
    query = (
        select(Refund.debtor_id, func.sum(Refund.amount_minor))
        .where(Refund.status.in_(WAITING))
        .group_by(Refund.debtor_id)
    )
    if ids is not None:
        query = query.where(Refund.campaign_id.in_(ids))
    waiting = {debtor_id: int(total) for debtor_id, total in session.execute(query)}
    # only cases whose waiting refunds no longer add up to their credit are looked at again
    debtor_ids = sorted(
        d for d in set(credits) | set(waiting) if credits.get(d, 0) != waiting.get(d, 0)
    )
    changed = 0
    for debtor_id in debtor_ids:
        # the case row is locked so that two runs at once cannot both add its refund
        debtor = session.scalar(select(Debtor).where(Debtor.id == debtor_id).with_for_update())
        if debtor is not None:
            changed += _sync_case(session, debtor)
    session.flush()
    return changed


def _sync_case(session: Session, debtor: Debtor) -> int:
    credit = balance.credit_minor(session, debtor)
    waiting = list(
        session.scalars(
            select(Refund)
            .where(Refund.debtor_id == debtor.id, Refund.status.in_(WAITING))
            .order_by(Refund.status.desc(), Refund.id.desc())  # due before approved
        )
    )
    changed = 0
    excess = sum(r.amount_minor for r in waiting) - credit
    for refund in waiting:
        if excess <= 0:
            break
        if refund.status == "due" and refund.amount_minor > excess:
            refund.amount_minor -= excess
            excess = 0
        else:  # an approved amount is never changed behind the approver's back
            excess -= refund.amount_minor
            if refund.way == "card" and _provider_refunded(session, refund):
                refund.status, refund.note = "done", "refunded through the card provider"
            else:
                refund.status, refund.note = "canceled", "the credit went away before it was paid"
        changed += 1
    missing = credit - sum(r.amount_minor for r in waiting if r.status in WAITING)
    if missing <= 0:
        return changed
    due = next((r for r in waiting if r.status == "due"), None)
    if due is not None:
        due.amount_minor += missing
        return changed + 1
    payer = payer_of(session, debtor)
    session.add(
        Refund(
            campaign_id=debtor.campaign_id, debtor_id=debtor.id, amount_minor=missing,
            currency=debtor.currency, way=payer.way, payer_iban=payer.iban,
            payer_bic=payer.bic, payer_name=payer.name, source_payment_id=payer.payment_id,
            status="due",
        )
    )  # fmt: skip
    return changed + 1


def _provider_refunded(session: Session, refund: Refund) -> bool:
    """Whether the card provider booked a refund for the case since this one was listed."""
    return (
        session.scalar(
            select(func.count(Payment.id)).where(
                Payment.debtor_id == refund.debtor_id,
                Payment.kind == "refund",
                Payment.provider.in_(CARD_PROVIDERS),
                Payment.status == "succeeded",
                Payment.created_at >= refund.created_at,
            )
        )
        > 0
    )


def listed(
    session: Session, *, statuses: Iterable[str] | None = None, visible=None
) -> list[tuple[Refund, Debtor, Campaign]]:
    """Refunds with their case and campaign, newest first; `visible` narrows the campaigns
    (kindly.accounts.scopes.visible with the caller's access)."""
    query = (
        select(Refund, Debtor, Campaign)
        .join(Debtor, Debtor.id == Refund.debtor_id)
        .join(Campaign, Campaign.id == Refund.campaign_id)
        .order_by(Refund.id.desc())
    )
    if statuses is not None:
        query = query.where(Refund.status.in_(list(statuses)))
    if visible is not None:
        query = visible(query)
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def refund_or_fail(session: Session, refund_id: int, visible=None) -> Refund:
    """The refund, locked; RefundError when there is none (or it is out of the caller's scope)."""
    query = select(Refund).join(Campaign, Campaign.id == Refund.campaign_id)
    query = query.where(Refund.id == refund_id).with_for_update(of=Refund)
    if visible is not None:
        query = visible(query)
    refund = session.scalar(query.execution_options(populate_existing=True))
    if refund is None:
        raise RefundError(f"there is no refund {refund_id}")
    return refund


def approve(session: Session, refund: Refund, *, user: User | None, via: str) -> Refund:
    """A manager's yes: the refund goes into the next pain.001 file."""
    if refund.status != "due":
        raise RefundError(f"refund {refund.id} is {refund.status}, not due")
    if refund.way == "card":
        raise RefundError(
            f"refund {refund.id} goes back through the card provider, not by transfer"
        )
    if not refund.payer_iban:
        raise RefundError(f"refund {refund.id} has no account to pay back to")
    refund.status = "approved"
    refund.approved_by = user.email if user else "operator"
    refund.approved_at = utcnow()
    audit.record(session, user, "refund.approve", via=via, campaign_id=refund.campaign_id,
                 refund=refund.id, amount_minor=refund.amount_minor,
                 currency=refund.currency)  # fmt: skip
    session.flush()
    return refund


def mark_done(session: Session, refund: Refund, *, user: User | None, via: str) -> Refund:
    """The bank carried out an exported refund."""
    if refund.status != "exported":
        raise RefundError(f"refund {refund.id} is {refund.status}, not exported")
    refund.status = "done"
    audit.record(session, user, "refund.done", via=via, campaign_id=refund.campaign_id,
                 refund=refund.id)  # fmt: skip
    session.flush()
    return refund
