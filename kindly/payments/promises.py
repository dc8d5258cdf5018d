"""Promises to pay: once the promised day passes, record whether the promise was kept.

The microsite records a promise as a `promise` event (`data.date`, `data.amount_minor`);
this module only judges them afterwards, once per event, into `payment_promise` rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.payments import ledger
from kindly.payments.models import Promise
from kindly.tracking.models import Event


def resolve_due(
    session: Session, today: dt.date, balance_of: Callable[[Debtor], int]
) -> dict[str, int]:
    """Judge every promise whose day is before `today`: kept if paid in full by then.
    `balance_of` says what a debtor still owes today (kindly.claims.balance)."""
    counts = {"kept": 0, "broken": 0}
    judged = select(Promise.event_id)
    query = select(Event).where(Event.type == "promise", Event.id.not_in(judged)).order_by(Event.id)
    for event in session.scalars(query).all():
        try:
            day = dt.date.fromisoformat(str((event.data or {}).get("date", "")))
        except ValueError:
            continue
        if day >= today:
            continue
        debtor = session.get(Debtor, event.debtor_id)
        made = (
            event.occurred_at
            if event.occurred_at.tzinfo
            else event.occurred_at.replace(tzinfo=dt.UTC)
        )
        amount = int((event.data or {}).get("amount_minor") or 0) or debtor.amount_due_minor
        paid = ledger.paid_between(session, debtor, made, day)
        kept = paid >= amount or balance_of(debtor) == 0
        row = Promise(
            event_id=event.id,
            campaign_id=event.campaign_id,
            debtor_id=debtor.id,
            promised_on=day,
            amount_minor=amount,
            currency=debtor.currency,
            paid_minor=paid,
            status="kept" if kept else "broken",
            made_at=made,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue  # another run judged it at the same time
        counts[row.status] += 1
    return counts


def outcome(session: Session, debtor: Debtor) -> Promise | None:
    """The debtor's latest judged promise, if any (for the microsite and the dashboard)."""
    return session.scalar(
        select(Promise).where(Promise.debtor_id == debtor.id).order_by(Promise.id.desc())
    )
