"""The items of a case (several invoices per claim) and the payments that name them.

The tables live beside the debtor because the portfolio import writes them; what the rest of
Kindly asks of items (open ones, their state, Select & Pay) is in kindly.claims.items.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy import BigInteger, Date, ForeignKey, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import column, table

from kindly.campaigns.models import Debtor
from kindly.infra.db import Base, utcnow

STATUSES = ("open", "closed", "disputed")
"""What an item's row says: open, closed (missing from a re-import, or closed by a manager)
or disputed. "paid" is never stored: an item is paid while succeeded payments cover its
amount (`paid_by_item`), so a late webhook or a bank booking needs no second write."""


class Item(Base):
    """One invoice of a case, with its own amount and payment reference."""

    __tablename__ = "claim_item"
    __table_args__ = (UniqueConstraint("debtor_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(100))  # the creditor's id, unique in the case
    item_date: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(String(500))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    principal_minor: Mapped[int | None] = mapped_column(BigInteger)
    interest_minor: Mapped[int | None] = mapped_column(BigInteger)
    fees_minor: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")
    # ISO 11649, derived from the campaign, the case and the item (kindly.bank.rf.item_rf_for)
    payment_reference: Mapped[str] = mapped_column(String(25), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column()


class PaymentItem(Base):
    """A payment pays these items (Select & Pay, or a transfer quoting an item's reference)."""

    __tablename__ = "payment_item"

    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payment.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(
        ForeignKey("claim_item.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # the part of the payment for it


_payment = table(  # kindly.payments.models' table (payments sit above campaigns)
    "payment",
    column("id"),
    column("status"),
    column("debtor_id"),
    column("amount_minor"),
    column("currency"),
)


def covered_minor(session: Session, item_ids: Collection[int]) -> dict[int, int]:
    """What succeeded payments that name each item paid of it, by the item's row id."""
    if not item_ids:
        return {}
    link = PaymentItem.__table__
    query = (
        select(link.c.item_id, func.sum(link.c.amount_minor))
        .join(_payment, _payment.c.id == link.c.payment_id)
        .where(_payment.c.status == "succeeded", link.c.item_id.in_(list(item_ids)))
        .group_by(link.c.item_id)
    )
    return {item_id: int(total or 0) for item_id, total in session.execute(query)}


def paid_by_item(session: Session, items: Sequence[Item]) -> dict[int, int]:
    """What is paid of each item (not closed), by row id: the payments that name it, then the
    case's money that named no item, given to its open items oldest first (§ 366 BGB: the
    debt that fell due first), so that a case paid in full has every item paid and what is
    open of its items adds up to its balance. A disputed item gets only money that names it."""
    if not items:
        return {}
    covered = covered_minor(session, [item.id for item in items])
    debtors = {item.debtor_id for item in items}
    debtor = Debtor.__table__
    query = (
        select(_payment.c.debtor_id, func.sum(_payment.c.amount_minor))
        .join(debtor, debtor.c.id == _payment.c.debtor_id)
        .where(
            _payment.c.debtor_id.in_(list(debtors)),
            _payment.c.status == "succeeded",
            _payment.c.currency == debtor.c.currency,
        )
        .group_by(_payment.c.debtor_id)
    )
    net = {debtor_id: int(total or 0) for debtor_id, total in session.execute(query)}
    for item in items:
        net[item.debtor_id] = net.get(item.debtor_id, 0) - covered.get(item.id, 0)
    paid = {}
    for item in sorted(items, key=lambda i: (i.debtor_id, i.item_date, i.item_id)):
        share = covered.get(item.id, 0)
        free = net.get(item.debtor_id, 0)
        if item.status == "open" and free > 0 and share < item.amount_minor:
            take = min(free, item.amount_minor - share)
            share += take
            net[item.debtor_id] = free - take
        paid[item.id] = share
    return paid
