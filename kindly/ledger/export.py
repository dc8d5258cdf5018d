"""The ledger export: one row per booking of a campaign in a period, for the creditor's books.

A booking is a succeeded `payment` row: a payment (any provider: Stripe, sandbox, bank,
recorded by hand), a refund, a lost dispute, a returned transfer or a counter-entry. Amounts
are signed (money out is negative), so the rows of a period add up to what it collected net.
Each row carries what the booking settled of each part of the claim (§ 367 BGB order, or the
campaign's) and the balance after it; both are derived from every earlier booking of the case,
so they are right even when the period starts after the first payment. The payer's IBAN is
written in full: the file is for the creditor, whose accountant matches it to the bank.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.infra import csvsafe
from kindly.money import from_minor
from kindly.payments import allocation, ledger
from kindly.payments.models import Payment

HEADER = (
    "date", "debtor_reference", "payment_reference", "payment_id", "kind", "method",
    "provider", "amount", "currency", "fees", "interest", "principal", "balance_after",
    "payer_iban", "note",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One booking as the export writes it (amounts in minor units)."""

    day: dt.date
    reference: str
    payment_reference: str
    payment_id: int
    kind: str
    method: str
    provider: str
    amount_minor: int
    currency: str
    settled: dict[str, int] | None  # per part; None when the claim is not broken down
    balance_after_minor: int
    payer_iban: str
    note: str

    def cells(self) -> list[Any]:
        """The row's cells in HEADER's order, amounts as decimals."""

        def money(minor: int | None) -> str:
            return "" if minor is None else str(from_minor(minor, self.currency))

        parts = self.settled or {}
        return [
            self.day.isoformat(), self.reference, self.payment_reference, self.payment_id,
            self.kind, self.method, self.provider, money(self.amount_minor), self.currency,
            money(parts.get("fees")), money(parts.get("interest")),
            money(parts.get("principal")), money(self.balance_after_minor), self.payer_iban,
            self.note,
        ]  # fmt: skip


def day_of(payment: Payment) -> dt.date:
    """When a booking happened: the day the money arrived, else the day it was recorded."""
    return payment.received_on or payment.created_at.date()


def rows(
    session: Session, campaign: Campaign, start: dt.date | None = None, end: dt.date | None = None
) -> Iterator[Row]:
    """The campaign's bookings from `start` to `end` (inclusive, either open), by case and day."""
    order = allocation.order_of(campaign)
    query = (
        select(Payment, Debtor)
        .join(Debtor, Debtor.id == Payment.debtor_id)
        .where(Payment.campaign_id == campaign.id, Payment.status == "succeeded")
        .order_by(Debtor.reference, Payment.id)
        .execution_options(yield_per=2000)
    )
    current: int | None = None
    bookings: list[tuple[Payment, Debtor]] = []
    for payment, debtor in session.execute(query):
        if payment.debtor_id != current and bookings:
            yield from _case_rows(bookings, order, start, end)
            bookings = []
        current = payment.debtor_id
        bookings.append((payment, debtor))
    if bookings:
        yield from _case_rows(bookings, order, start, end)


def _case_rows(bookings, order, start, end) -> Iterator[Row]:
    """One case's rows in the period, with the running total of every booking before."""
    bookings.sort(key=lambda item: (day_of(item[0]), item[0].id))
    debtor = bookings[0][1]
    parts = allocation.parts_of(debtor)
    paid = 0
    for payment, _ in bookings:
        if payment.currency != debtor.currency:
            continue  # only the claim's currency counts (as in the ledger)
        before, paid = paid, paid + payment.amount_minor
        day = day_of(payment)
        if (start and day < start) or (end and day > end):
            continue
        yield Row(
            day=day, reference=debtor.reference,
            payment_reference=debtor.payment_reference or "", payment_id=payment.id,
            kind=payment.kind, method=payment.method or "", provider=payment.provider,
            amount_minor=payment.amount_minor, currency=payment.currency,
            settled=allocation.settled(parts, before, paid, order) if parts else None,
            balance_after_minor=ledger.balance_after(debtor, paid),
            payer_iban=payment.payer_iban or "", note=payment.notes or "",
        )  # fmt: skip


def write(handle: TextIO, found: Iterator[Row]) -> int:
    """Write the header and the rows as CSV, every cell formula-safe; the number of rows."""
    writer = csvsafe.writer(handle)
    writer.writerow(HEADER)
    count = 0
    for row in found:
        writer.writerow(row.cells())
        count += 1
    return count
