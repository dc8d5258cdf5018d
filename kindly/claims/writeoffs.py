"""Parts of a claim given up, each with its reason (a settlement offer taken, a manager).

A write-off is a row of its own (`write_off`), never a change of the imported claim: what
was owed, what was paid and what was given up stay readable side by side. The offer a debtor
took books exactly one (`source` "offer", unique per case), so a webhook delivered twice or
a bank statement imported again never writes off twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kindly.infra.db import Base, utcnow

CHUNK = 500
SOURCES = ("offer", "manager")
"""offer: the rest of a claim a settlement offer gave up once its amount was paid;
manager: a person's decision (reserved: nothing writes it yet)."""


class WriteOff(Base):
    """A part of one debtor's claim given up, with why and what settled it."""

    __tablename__ = "write_off"
    __table_args__ = (UniqueConstraint("debtor_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(16))  # offer | manager
    reason: Mapped[str] = mapped_column(Text)  # the offer's reason as the rules name it
    payment_id: Mapped[int | None] = mapped_column(Integer)  # the payment that took the offer
    offered_minor: Mapped[int | None] = mapped_column(BigInteger)  # what the offer asked for
    rule_version: Mapped[int | None] = mapped_column(Integer)
    booked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def written_off_minor(session: Session, debtor_ids: Sequence[int]) -> dict[int, int]:
    """What was written off each debtor's claim, by debtor id (absent: none)."""
    ids = list(debtor_ids)
    out: dict[int, int] = {}
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(WriteOff.debtor_id, func.sum(WriteOff.amount_minor))
            .where(WriteOff.debtor_id.in_(ids[start : start + CHUNK]))
            .group_by(WriteOff.debtor_id)
        )
        out.update((debtor_id, int(total or 0)) for debtor_id, total in rows)
    return out


def write_offs(session: Session, debtor_id: int) -> list[WriteOff]:
    """One debtor's write-offs, oldest first."""
    return list(
        session.scalars(
            select(WriteOff).where(WriteOff.debtor_id == debtor_id).order_by(WriteOff.id)
        )
    )
