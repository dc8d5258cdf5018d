"""Tables of the debtor's microsite: identity-check attempts and locks, rate-limit counters."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kindly.core.models import Base


class IdentityCheck(Base):
    """Wrong answers to a link's identity check, and the lock they lead to."""

    __tablename__ = "identity_check"

    debtor_id: Mapped[int] = mapped_column(
        ForeignKey("debtor.id", ondelete="CASCADE"), primary_key=True
    )
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    total_failures: Mapped[int] = mapped_column(Integer, default=0)
    locks: Mapped[int] = mapped_column(Integer, default=0)


class RateCount(Base):
    """Hits of one rate-limit rule and key in one window (kindly.core.ratelimit)."""

    __tablename__ = "rate_count"

    rule: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)  # an HMAC, not the address
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
