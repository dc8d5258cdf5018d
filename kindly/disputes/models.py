"""The dispute tables: a debtor's dispute of a claim (or of one item), and its files."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow

REASONS = ("already_paid", "amount_wrong", "not_my_contract", "not_received", "other")
"""Why a debtor disputes: paid already, the amount is wrong, not their contract, the goods or
service never arrived, or something else (the text says what)."""
STATES = ("open", "upheld", "rejected")
"""open: waiting for a person; upheld: the debtor was right (the claim corrected or closed);
rejected: the claim stands, and the debtor was told why."""
OUTCOMES = ("corrected", "closed", "rejected")
"""How a manager resolved it: the amount corrected, the claim closed, or the dispute rejected."""


class Dispute(Base):
    """One dispute a debtor opened from their page; its `dispute` hold stops collection."""

    __tablename__ = "dispute"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"), index=True)
    item_ref: Mapped[str | None] = mapped_column(String(100))  # the item disputed; None: all
    reason: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="open")
    answer_by: Mapped[dt.date] = mapped_column(Date)  # the day an answer is promised by
    hold_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_hold.id", ondelete="SET NULL")
    )  # the hold it placed (released when resolved)
    inbox_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbox_item.id", ondelete="SET NULL")
    )  # the cockpit's inbox item, which the rejection's reason answers
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(16))  # corrected | closed | rejected
    answer: Mapped[str | None] = mapped_column(Text)  # the manager's words to the debtor
    amount_before_minor: Mapped[int | None] = mapped_column(BigInteger)
    amount_after_minor: Mapped[int | None] = mapped_column(BigInteger)
    answer_channel: Mapped[str | None] = mapped_column(String(16))  # email | sms | page
    resolved_at: Mapped[dt.datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(320))


class DisputeFile(Base):
    """A document a debtor attached: kept privately in storage under a key nobody can guess."""

    __tablename__ = "dispute_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("dispute.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(300), unique=True)
    filename: Mapped[str] = mapped_column(String(200))  # as the debtor named it, cleaned
    content_type: Mapped[str] = mapped_column(String(64))  # from the content, not the name
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    scan: Mapped[str] = mapped_column(String(16))  # clean (clamd said OK) | unscanned
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
