"""The audit log: every manager action, with who, when, how and on which campaign."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts.models import AuditLog, User


def record(
    session: Session,
    user: User | None,
    action: str,
    *,
    via: str,
    campaign_id: int | None = None,
    **detail: Any,
) -> AuditLog:
    """Append one entry (user None: the command line, as the operator)."""
    entry = AuditLog(
        user_id=user.id if user else None,
        actor=user.email if user else "operator",
        via=via,
        action=action,
        campaign_id=campaign_id,
        detail=detail,
    )
    session.add(entry)
    session.flush()
    return entry


def recent(session: Session, limit: int = 200, campaign_id: int | None = None) -> list[AuditLog]:
    """The newest entries first."""
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if campaign_id is not None:
        query = query.where(AuditLog.campaign_id == campaign_id)
    return list(session.scalars(query))
