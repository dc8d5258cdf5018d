"""The tables behind a debtor's link: stored artifacts, identity checks, rate counters."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kindly.infra.db import Base, utcnow

if TYPE_CHECKING:
    from kindly.campaigns.models import Debtor


class Artifact(Base):
    """A rendered file of a debtor (site, letter, video, poster, captions) in storage."""

    __tablename__ = "artifact"
    __table_args__ = (UniqueConstraint("debtor_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    # unique: one stored object is one debtor's (keys name the debtor's id, migration 0980)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # fingerprint of what it was rendered from (view, templates, renderer); None: unknown
    inputs: Mapped[str | None] = mapped_column(String(64), default=None)
    # the latest change to what it is made of (rules, texts, settings, creditor) not yet rebuilt
    stale_at: Mapped[dt.datetime | None] = mapped_column()
    stale_reason: Mapped[str | None] = mapped_column(String(64))
    rendered_at: Mapped[dt.datetime | None] = mapped_column()  # when the last (re)build ended
    renderer: Mapped[str | None] = mapped_column(String(64))  # renderer_version it was made by

    debtor: Mapped[Debtor] = relationship(back_populates="artifacts")


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
    """Hits of one rate-limit rule and key in one window (kindly.site.ratelimit)."""

    __tablename__ = "rate_count"

    rule: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)  # an HMAC, not the address
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
