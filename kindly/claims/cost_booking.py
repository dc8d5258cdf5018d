"""The cost table: one row per cost booked on a case at a cadence step (RDG § 13a)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow


class CostBooking(Base):
    """A cost booked on one case at one step: its type, amount and legal basis.

    (debtor, step, type) is unique in the database, so a retried, re-planned or duplicated
    send, or two workers at once, book a step's cost once; nothing updates or deletes a row.
    """

    __tablename__ = "cost_booking"
    __table_args__ = (UniqueConstraint("debtor_id", "step", "cost_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)  # the cadence step whose message charged it
    cost_type: Mapped[str] = mapped_column(String(32))  # kindly.rules.costrules.COST_TYPES
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # in the case's currency, > 0
    currency: Mapped[str] = mapped_column(String(3))
    basis: Mapped[str] = mapped_column(String(200))  # the legal basis the debtor is shown
    channel: Mapped[str | None] = mapped_column(String(16))  # the step's message went by
    rule_version: Mapped[int] = mapped_column(Integer, default=0)
    booked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
