"""The money tables: payments, provider webhook events, plans, instalments, promises."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kindly.infra.db import Base, utcnow


class Payment(Base):
    """One payment attempt at a provider, keyed by the provider's own id."""

    __tablename__ = "payment"
    __table_args__ = (
        UniqueConstraint("provider", "provider_ref"),
        # most payments have neither: no index entry for NULL (migration 1001)
        Index("ix_payment_intent_ref", "intent_ref",
              postgresql_where=text("intent_ref IS NOT NULL")),
        Index("ix_payment_instalment_id", "instalment_id",
              postgresql_where=text("instalment_id IS NOT NULL")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    # no key of its own on PostgreSQL: the debtor's cascades and locks (migration 1001)
    campaign_id: Mapped[int] = mapped_column(Integer)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str] = mapped_column(String(128))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="started")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    notes: Mapped[str | None] = mapped_column(Text)
    # payment | refund | dispute | return; refunds, lost disputes and returned transfers are
    # negative amounts, so every sum of succeeded rows (ledger, stats, exports) is already net
    # (migration 0600).
    kind: Mapped[str] = mapped_column(String(16), default="payment", server_default="payment")
    intent_ref: Mapped[str | None] = mapped_column(String(128))
    instalment_id: Mapped[int | None] = mapped_column(Integer)
    # How the money came (bank_transfer for a booked statement entry; None: the provider's
    # checkout), the payer's account when known, and the day it arrived (migration 0997).
    method: Mapped[str | None] = mapped_column(String(32))
    payer_iban: Mapped[str | None] = mapped_column(String(34))
    received_on: Mapped[dt.date | None] = mapped_column(Date)


class WebhookEvent(Base):
    """A provider event already applied; its id is never applied twice."""

    __tablename__ = "webhook_event"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Plan(Base):
    """An agreed instalment plan: the schedule and how later instalments are collected."""

    __tablename__ = "payment_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    frequency: Mapped[str] = mapped_column(String(16))  # monthly | fortnightly
    count: Mapped[int] = mapped_column(Integer)
    # agreed -> active (a payment method is saved) -> completed | broken
    status: Mapped[str] = mapped_column(String(16), default="agreed")
    misses: Mapped[int] = mapped_column(Integer, default=0)  # failed charges in a row
    # the terms agreed: the first missed instalment moves to the end (migration 1007)
    missed_to_end: Mapped[bool] = mapped_column(default=False, server_default=false())
    customer_ref: Mapped[str | None] = mapped_column(String(128))
    method_ref: Mapped[str | None] = mapped_column(String(128))
    method_type: Mapped[str | None] = mapped_column(String(32))
    agreed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column()

    instalments: Mapped[list[Instalment]] = relationship(
        back_populates="plan", order_by="Instalment.seq"
    )


class Instalment(Base):
    """One dated amount of a plan."""

    __tablename__ = "instalment"
    __table_args__ = (UniqueConstraint("plan_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("payment_plan.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # due -> processing -> paid; failed (a retry is set) ; canceled when the plan breaks
    status: Mapped[str] = mapped_column(String(16), default="due")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_on: Mapped[dt.date | None] = mapped_column(Date)
    notified_on: Mapped[dt.date | None] = mapped_column(Date)

    plan: Mapped[Plan] = relationship(back_populates="instalments")


class Promise(Base):
    """How a debtor's promise to pay (a `promise` event) turned out once its day passed."""

    __tablename__ = "payment_promise"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"), index=True)
    promised_on: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    paid_minor: Mapped[int] = mapped_column(BigInteger)  # paid from the promise to its day
    status: Mapped[str] = mapped_column(String(16))  # kept | broken
    made_at: Mapped[dt.datetime] = mapped_column()
    resolved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
