"""The database tables: campaigns, debtors, artifacts, events and payments."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for migrations."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, dt.datetime: DateTime(timezone=True)}


class Campaign(Base):
    """A batch of debtors worked together, with its defaults."""

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    default_locale: Mapped[str] = mapped_column(String(35), default="de-DE")
    creditor: Mapped[str | None] = mapped_column(String(200))
    contract: Mapped[str | None] = mapped_column(String(500))
    brand_color: Mapped[str] = mapped_column(String(7), default="#1f5f8b")
    # Options the parts of Kindly read by name (letter payee and IBAN, PDF variant, video
    # template, …); each part validates its own keys when the campaign is saved.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    debtors: Mapped[list[Debtor]] = relationship(back_populates="campaign")


class Debtor(Base):
    """One case of a campaign: who owes what to whom, and the link that reaches them."""

    __tablename__ = "debtor"
    __table_args__ = (UniqueConstraint("campaign_id", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    reference: Mapped[str] = mapped_column(String(100))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    salutation: Mapped[str | None] = mapped_column(String(50))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))
    locale: Mapped[str | None] = mapped_column(String(35))
    currency: Mapped[str] = mapped_column(String(3))
    amount_due_minor: Mapped[int] = mapped_column(BigInteger)
    principal_minor: Mapped[int | None] = mapped_column(BigInteger)
    interest_minor: Mapped[int | None] = mapped_column(BigInteger)
    fees_minor: Mapped[int | None] = mapped_column(BigInteger)
    due_date: Mapped[dt.date] = mapped_column(Date)
    creditor: Mapped[str | None] = mapped_column(String(200))
    contract: Mapped[str | None] = mapped_column(String(500))
    street: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    segment: Mapped[str] = mapped_column(String(64), default="default")
    variant: Mapped[str] = mapped_column(String(64), default="A")
    channel: Mapped[str] = mapped_column(String(16), default="email")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="debtors")
    artifacts: Mapped[list[Artifact]] = relationship(back_populates="debtor")


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

    debtor: Mapped[Debtor] = relationship(back_populates="artifacts")


class Event(Base):
    """One step a debtor (or a machine on their behalf) took; rows are only ever appended."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_campaign_type", "campaign_id", "type"),
        Index("ix_event_debtor_type_at", "debtor_id", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))
    variant: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(16), default="human")  # human|prefetch|automated
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Payment(Base):
    """One payment attempt at a provider, keyed by the provider's own id."""

    __tablename__ = "payment"
    __table_args__ = (UniqueConstraint("provider", "provider_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str] = mapped_column(String(128))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="started")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    notes: Mapped[str | None] = mapped_column(Text)
    # payment | refund | dispute; refunds and lost disputes are negative amounts, so every
    # sum of succeeded rows (ledger, stats, exports) is already net (migration 0600).
    kind: Mapped[str] = mapped_column(String(16), default="payment", server_default="payment")
    intent_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    instalment_id: Mapped[int | None] = mapped_column(Integer, index=True)
