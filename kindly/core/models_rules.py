"""Tables of campaign intelligence: rule versions, per-debtor decisions, sends and opt-outs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kindly.core.models import Base, utcnow


class RuleSet(Base):
    """One saved version of a campaign's rules document; versions only ever grow."""

    __tablename__ = "rule_set"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Decision(Base):
    """What the rules of one version chose for one debtor, kept so outcomes can be explained."""

    __tablename__ = "decision"
    __table_args__ = (
        UniqueConstraint("debtor_id", "rule_version"),
        Index("ix_decision_campaign_version", "campaign_id", "rule_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    rule_version: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(64))
    experiment: Mapped[str | None] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(64))
    tone: Mapped[str] = mapped_column(String(16))
    channels: Mapped[list[str]] = mapped_column(JSON)  # in the order they are tried
    treatment: Mapped[dict[str, Any]] = mapped_column()  # the segment's resolved settings
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


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
