"""The inbox tables: items a debtor sent, the replies to them, and notes on a case."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow

TOPICS = ("question", "dispute", "callback", "hardship")
"""What a debtor may send from the page (web.debtor.forms.TOPICS); hardship: breathing space
asked for with that reason (kindly.leeway.breathing), a case for a person."""
STATUSES = ("open", "answered", "closed")
"""open: nobody has answered; answered: a reply went out, the item is not closed yet;
closed: nothing more to do."""
CHANNELS = ("email", "sms", "page")
"""How a reply reaches the debtor: by email, by SMS, or shown on their page."""


class InboxItem(Base):
    """One question, dispute or call-back request, made from one `contact` event."""

    __tablename__ = "inbox_item"
    __table_args__ = (Index("ix_inbox_item_campaign_status", "campaign_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("event.id", ondelete="SET NULL"),
        unique=True,
    )  # the `contact` event it came from: each event makes one item, whoever reads first
    topic: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16), default="page")  # page | api | cockpit
    status: Mapped[str] = mapped_column(String(16), default="open")
    owner: Mapped[str | None] = mapped_column(String(320))  # a user's email
    due_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()


class InboxReply(Base):
    """An answer to an item, and whether it reached the debtor."""

    __tablename__ = "inbox_reply"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("inbox_item.id", ondelete="CASCADE"), index=True
    )
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # sent | outbox | shown | failed
    address: Mapped[str | None] = mapped_column(String(320))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CaseNote(Base):
    """A note a person wrote on a case (what was agreed on the phone, why a hold was lifted)."""

    __tablename__ = "case_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
