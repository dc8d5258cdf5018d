"""What a debtor owes on a day: the imported claim, plus interest and costs, less write-offs.

The one place that adds the terms up. Each term is read in bulk by its own module (a fixed
number of statements per call, whatever the number of debtors), so the send plan and the
cockpit ask for thousands of cases at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.claims import accrual, costs, writeoffs


@dataclass(frozen=True)
class Amount:
    """A debtor's claim on a day, by term, in minor units of the claim's currency."""

    base_minor: int  # the imported claim: the sum of its open items (Debtor.amount_due_minor)
    interest_minor: int = 0  # accrued up to and including the day (paid or not: the
    # balance subtracts payments from the total, kindly.claims.balance)
    costs_minor: int = 0  # costs booked at cadence steps
    written_off_minor: int = 0  # given up by a settlement offer taken, or by a manager

    @property
    def total_minor(self) -> int:
        """The whole claim on the day, before payments."""
        return max(
            self.base_minor + self.interest_minor + self.costs_minor - self.written_off_minor, 0
        )


def amounts_on(session: Session, debtors: Sequence[Debtor], day: dt.date) -> dict[int, Amount]:
    """Each debtor's claim on `day`, by debtor id."""
    if not debtors:
        return {}
    accrued = accrual.accrued_minor(session, debtors, day)
    ids = [debtor.id for debtor in debtors]
    booked = costs.booked_minor(session, ids)
    given_up = writeoffs.written_off_minor(session, ids)
    return {
        debtor.id: Amount(
            debtor.amount_due_minor,
            accrued.get(debtor.id, 0),
            booked.get(debtor.id, 0),
            given_up.get(debtor.id, 0),
        )
        for debtor in debtors
    }


def amount_on(session: Session, debtor: Debtor, day: dt.date) -> Amount:
    """One debtor's claim on `day`."""
    return amounts_on(session, [debtor], day)[debtor.id]
