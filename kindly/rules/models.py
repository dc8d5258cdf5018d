"""The rules tables: versioned rule sets and each debtor's decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow


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
