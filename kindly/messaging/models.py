"""The messaging tables: sends (one per debtor, step and channel) and opt-outs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow


class Send(Base):
    """One message to one debtor at one step on one channel: the key that makes sends idempotent."""

    __tablename__ = "send"
    __table_args__ = (
        UniqueConstraint("debtor_id", "step", "channel"),
        Index("ix_send_campaign_status", "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|sent|failed|bounced
    address: Mapped[str | None] = mapped_column(String(320))
    message_id: Mapped[str | None] = mapped_column(String(200))
    parts: Mapped[int | None] = mapped_column(Integer)  # SMS segments
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class OptOut(Base):
    """An address that must not be contacted on a channel (all channels when channel is '*')."""

    __tablename__ = "opt_out"
    __table_args__ = (UniqueConstraint("address", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320))  # lower-cased email or E.164 phone
    channel: Mapped[str] = mapped_column(String(16))  # email|sms|letter|*
    reason: Mapped[str] = mapped_column(String(32))  # debtor|suppression|bounced_hard
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
