"""What was paid on a claim, derived from its payments, never overwritten (the balance of a
day is kindly.claims.balance)."""

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


# The balance of a day (the claim with its interest and costs, less payments) is
# kindly.claims.balance: kindly.payments knows payments, not what accrues on a claim, and must
# not import kindly.claims (which reads payments). The two below take the claim as given.


def balance_after(debtor: Debtor, paid: int, claim_minor: int | None = None) -> int:
    """The open balance once `paid` (minor units) has been paid, never below zero; the claim
    is the imported one unless `claim_minor` (the amount owed on a day) is given."""
    claim = debtor.amount_due_minor if claim_minor is None else claim_minor
    return max(claim - paid, 0)


def credit_after(debtor: Debtor, paid: int, claim_minor: int | None = None) -> int:
    """The overpayment once `paid` (minor units) has been paid (claim as in balance_after)."""
    claim = debtor.amount_due_minor if claim_minor is None else claim_minor
    return max(paid - claim, 0)
