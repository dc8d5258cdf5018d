"""The campaign tables: campaigns, their debtors and each campaign's status."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    String,
    UniqueConstraint,
    event,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kindly.bank.rf import rf_for
from kindly.infra.db import Base, utcnow

if TYPE_CHECKING:
    from kindly.site.models import Artifact


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
    # The ISO 11649 creditor reference a transfer quotes ('RF…', compact), kept once set
    # (kindly.bank.rf; migration 0997).
    payment_reference: Mapped[str | None] = mapped_column(String(25), unique=True, index=True)
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


@event.listens_for(Debtor, "before_insert")
def _payment_reference(_mapper, connection, debtor: Debtor) -> None:
    """A debtor added one at a time (the demo, the API) gets its reference like an import's."""
    if debtor.payment_reference is None and debtor.reference:
        slug = connection.scalar(select(Campaign.slug).where(Campaign.id == debtor.campaign_id))
        debtor.payment_reference = rf_for(slug or "", debtor.reference)


STATUSES = ("draft", "live", "paused", "ended")
"""A campaign is a draft until launched; a live campaign can be paused and resumed; only a
live one sends anything. Ending is final: the cases are then closed for retention."""


class CampaignStatus(Base):
    """Whether a campaign is a draft, live, paused or ended (absent row: draft)."""

    __tablename__ = "campaign_status"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), default="draft")
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
