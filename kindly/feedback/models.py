"""The survey table: one answer per case and occasion."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow

OCCASIONS = ("paid", "plan")
"""paid: after the claim was paid (in full, or by a settlement offer); plan: after a plan was
agreed on the page."""


class SurveyAnswer(Base):
    """How easy it was (1–5) and an optional comment, with the segment and variant the debtor
    had when they answered (the cockpit reports by both)."""

    __tablename__ = "survey_answer"
    __table_args__ = (
        UniqueConstraint("debtor_id", "occasion"),
        Index("ix_survey_answer_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    occasion: Mapped[str] = mapped_column(String(8))  # paid | plan
    score: Mapped[int] = mapped_column(SmallInteger)  # 1 (hard) … 5 (very easy)
    comment: Mapped[str | None] = mapped_column(Text)
    segment: Mapped[str | None] = mapped_column(String(64))
    variant: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
