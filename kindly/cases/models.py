"""The case tables: holds a debtor or a manager placed on collection."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow

HOLD_REASONS = ("dispute", "breathing_space", "manual")
"""dispute: the debtor contests the claim (from the page, the cockpit or an import) until a
person answers it; breathing_space: time granted, until a date; manual: a manager's hold."""


class CaseHold(Base):
    """A hold on collection: no reminder goes out while it is open (released_at is null and,
    with an `until`, that day has not passed)."""

    __tablename__ = "case_hold"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # page | cockpit | api | cli | import
    placed_by: Mapped[str | None] = mapped_column(String(200))  # a user's email; None: debtor
    note: Mapped[str | None] = mapped_column(Text)
    placed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    until: Mapped[dt.date | None] = mapped_column(Date)
    released_at: Mapped[dt.datetime | None] = mapped_column()
    released_by: Mapped[str | None] = mapped_column(String(200))
    release_note: Mapped[str | None] = mapped_column(Text)
