"""The creditor table: one profile per creditor name, shared by every campaign that names it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow


class Creditor(Base):
    """A creditor's profile; `name` is what a debtor's (or campaign's) `creditor` column says."""

    __tablename__ = "creditor"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    legal_form: Mapped[str] = mapped_column(String(60), default="")
    address: Mapped[list[str]] = mapped_column(JSON, default=list)  # postal lines
    email_sender_name: Mapped[str] = mapped_column(String(200), default="")  # From display name
    email_address: Mapped[str] = mapped_column(String(254), default="")  # Reply-To
    phone: Mapped[str] = mapped_column(String(32), default="")  # E.164
    payee_name: Mapped[str] = mapped_column(String(70), default="")  # account holder
    iban: Mapped[str] = mapped_column(String(34), default="")
    bic: Mapped[str] = mapped_column(String(11), default="")
    supervisory_authority: Mapped[str] = mapped_column(String(300), default="")
    logo: Mapped[str] = mapped_column(String(200), default="")  # storage key of the PNG
    brand_color: Mapped[str] = mapped_column(String(7), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
