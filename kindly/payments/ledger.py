"""The balance of a claim, derived from the claim and its payments, never overwritten."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.payments.models import Payment


def paid_minor(session: Session, debtor: Debtor) -> int:
    """What the debtor has paid so far, in minor units of the claim's currency."""
    total = session.scalar(
        select(func.coalesce(func.sum(Payment.amount_minor), 0)).where(
            Payment.debtor_id == debtor.id,
            Payment.status == "succeeded",
            Payment.currency == debtor.currency,
        )
    )
    return int(total or 0)


def paid_between(
    session: Session, debtor: Debtor, since: dt.datetime, until: dt.date | None = None
) -> int:
    """Net money settled for the debtor from `since` (to the end of `until`, if given), in the
    claim's currency."""
    query = select(func.coalesce(func.sum(Payment.amount_minor), 0)).where(
        Payment.debtor_id == debtor.id,
        Payment.status == "succeeded",
        Payment.currency == debtor.currency,
        Payment.updated_at >= since,
    )
    if until is not None:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        query = query.where(Payment.updated_at < end)
    return int(session.scalar(query) or 0)


def balance_minor(session: Session, debtor: Debtor) -> int:
    """What is still open: the claim less succeeded payments, never below zero."""
    return balance_after(debtor, paid_minor(session, debtor))


def balance_after(debtor: Debtor, paid: int) -> int:
    """The open balance once `paid` (minor units) has been paid, never below zero."""
    return max(debtor.amount_due_minor - paid, 0)


def credit_minor(session: Session, debtor: Debtor) -> int:
    """What the debtor paid beyond the claim (an overpayment, refund due), never below zero."""
    return credit_after(debtor, paid_minor(session, debtor))


def credit_after(debtor: Debtor, paid: int) -> int:
    """The overpayment once `paid` (minor units) has been paid."""
    return max(paid - debtor.amount_due_minor, 0)
