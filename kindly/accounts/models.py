"""The dashboard's tables: users, API tokens, sign-in attempts and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kindly.infra.db import Base, utcnow

ROLES = ("admin", "manager", "viewer")
"""Admin manages users and settings; manager runs campaigns; viewer only reads."""


class User(Base):
    """A person who signs in to the dashboard."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column()
    # None: every campaign; else {"creditors": [...], "campaigns": [...]} (kindly.accounts.scopes)
    scope: Mapped[dict[str, Any] | None] = mapped_column()
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    """Dashboard sessions signed in under another number are over (web.admin.common)."""


class ApiToken(Base):
    """A per-user API key; only its SHA-256 is stored, the key itself is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    # None: the user's scope; else narrower still (a key never reaches more than its user)
    scope: Mapped[dict[str, Any] | None] = mapped_column()


class LoginAttempt(Base):
    """One sign-in attempt, kept to slow down password guessing."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_email_at", "email", "at"),
        Index("ix_login_attempt_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column()
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """Who did what, when, to which campaign; rows are only ever appended."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320))  # the email, kept if the user goes
    via: Mapped[str] = mapped_column(String(8))  # web | api | cli
    action: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
