"""The event table: append-only, one row per thing that happened."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow


class Event(Base):
    """One step a debtor (or a machine on their behalf) took; rows are only ever appended."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_campaign_type", "campaign_id", "type"),
        Index("ix_event_debtor_type_at", "debtor_id", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    # no key of its own on PostgreSQL: the debtor's cascades and locks (migration 1001)
    campaign_id: Mapped[int] = mapped_column(Integer)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))
    variant: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(16), default="human")  # human|prefetch|automated
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
