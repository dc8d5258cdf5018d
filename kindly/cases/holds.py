"""Placing and releasing holds on collection (a dispute, breathing space, a manager's hold)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.cases.models import HOLD_REASONS, CaseHold
from kindly.errors import KindlyError
from kindly.infra.db import utcnow
from kindly.tracking import events


class HoldError(KindlyError):
    """A hold that cannot be placed or released as asked."""


def open_holds(session: Session, debtor: Debtor) -> list[CaseHold]:
    """The debtor's holds not yet released (oldest first)."""
    return list(
        session.scalars(
            select(CaseHold)
            .where(CaseHold.debtor_id == debtor.id, CaseHold.released_at.is_(None))
            .order_by(CaseHold.id)
        )
    )


def place(
    session: Session,
    debtor: Debtor,
    reason: str,
    *,
    source: str,
    by: str | None = None,
    note: str | None = None,
    until: dt.date | None = None,
) -> CaseHold:
    """Hold collection for `reason`; an open hold for the same reason still in force is
    returned as it is (a second dispute from the page does not stack up)."""
    if reason not in HOLD_REASONS:
        raise HoldError(f"unknown hold reason {reason!r}: use one of {', '.join(HOLD_REASONS)}")
    if reason == "breathing_space" and until is None:
        raise HoldError("breathing space needs the day it ends")
    if until is not None and until < dt.date.today():
        raise HoldError(f"the hold would end in the past ({until.isoformat()})")
    for hold in open_holds(session, debtor):
        # one that ended on its day no longer holds anything: a new one is placed
        if hold.reason == reason and (hold.until is None or hold.until >= dt.date.today()):
            return hold
    hold = CaseHold(campaign_id=debtor.campaign_id, debtor_id=debtor.id, reason=reason,
                    source=source, placed_by=by, note=note, until=until)  # fmt: skip
    session.add(hold)
    session.flush()
    data = {"reason": reason, "source": source, "hold_id": hold.id}
    events.record(session, debtor, "hold", data=data, key=f"hold:{hold.id}")
    return hold


def release(
    session: Session, debtor: Debtor, hold_id: int, *, by: str, note: str | None = None
) -> CaseHold:
    """End a hold (a dispute answered, a manager's hold lifted); collection resumes."""
    hold = session.get(CaseHold, hold_id)
    if hold is None or hold.debtor_id != debtor.id:
        raise HoldError(f"no hold {hold_id} on case {debtor.reference}")
    if hold.released_at is not None:
        raise HoldError(f"hold {hold_id} was released already")
    hold.released_at, hold.released_by, hold.release_note = utcnow(), by, note
    data = {"reason": hold.reason, "hold_id": hold.id}
    events.record(session, debtor, "hold_released", data=data, key=f"hold_released:{hold.id}")
    return hold
