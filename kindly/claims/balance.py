"""What is still open of a claim on a day: the amount owed then, less what was paid.

The one balance of Kindly (moved here from kindly.payments.ledger, which knows payments but
not interest or costs: kindly.payments must not import kindly.claims, which reads payments).
The payment pages, plans, promises, the bank import, refunds and the cockpit ask here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.claims.amount import Amount, amounts_on
from kindly.payments.models import Payment


@dataclass(frozen=True)
class Balance:
    """A debtor's claim on a day and what was paid against it (net), in minor units."""

    claim: Amount
    paid_minor: int

    @property
    def balance_minor(self) -> int:
        """What is still open, never below zero."""
        return max(self.claim.total_minor - self.paid_minor, 0)

    @property
    def credit_minor(self) -> int:
        """What was paid beyond the claim (an overpayment, a refund due), never below zero."""
        return max(self.paid_minor - self.claim.total_minor, 0)


def paid_by_debtor(session: Session, debtors: Sequence[Debtor]) -> dict[int, int]:
    """Net succeeded payments in each claim's currency, by debtor id (one statement)."""
    by_id = {debtor.id: debtor for debtor in debtors}
    if not by_id:
        return {}
    rows = session.execute(
        select(Payment.debtor_id, Payment.currency, func.sum(Payment.amount_minor))
        .where(Payment.debtor_id.in_(list(by_id)), Payment.status == "succeeded")
        .group_by(Payment.debtor_id, Payment.currency)
    )
    return {
        debtor_id: int(total or 0)
        for debtor_id, currency, total in rows
        if currency == by_id[debtor_id].currency
    }


def balances_on(
    session: Session,
    debtors: Sequence[Debtor],
    day: dt.date | None = None,
    paid: dict[int, int] | None = None,
) -> dict[int, Balance]:
    """Each debtor's balance on `day` (default today), by debtor id; `paid` when already read."""
    day = day or dt.date.today()
    paid = paid_by_debtor(session, debtors) if paid is None else paid
    claims = amounts_on(session, debtors, day)
    return {debtor.id: Balance(claims[debtor.id], paid.get(debtor.id, 0)) for debtor in debtors}


def balance_on(session: Session, debtor: Debtor, day: dt.date | None = None) -> Balance:
    """One debtor's balance on `day` (default today)."""
    return balances_on(session, [debtor], day)[debtor.id]


def balance_minor(session: Session, debtor: Debtor, day: dt.date | None = None) -> int:
    """What is still open on `day` (default today): the claim then less net payments."""
    return balance_on(session, debtor, day).balance_minor


def credit_minor(session: Session, debtor: Debtor, day: dt.date | None = None) -> int:
    """What the debtor paid beyond the claim on `day` (default today), never below zero."""
    return balance_on(session, debtor, day).credit_minor
