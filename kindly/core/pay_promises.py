"""Promises to pay: a date within the campaign's limit, kept or broken once it passes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.core import events, ledger, pay_rules
from kindly.core.errors import KindlyError
from kindly.core.models import Debtor, utcnow
from kindly.core.models_payments import Promise
from kindly.core.money import from_minor


class PromiseError(KindlyError):
    """A promise that cannot be accepted; `latest` is the last day allowed."""

    def __init__(self, message: str, latest: dt.date):
        super().__init__(message)
        self.latest = latest


def latest_day(debtor: Debtor, today: dt.date) -> dt.date:
    """The last day the debtor may promise to pay by."""
    return today + dt.timedelta(days=pay_rules.promise_max_days(debtor.campaign))


def open_promise(session: Session, debtor: Debtor) -> Promise | None:
    """The debtor's promise not yet resolved, if any."""
    return session.scalar(
        select(Promise).where(Promise.debtor_id == debtor.id, Promise.status == "open")
    )


def make(
    session: Session, debtor: Debtor, day: dt.date, *, today: dt.date, channel: str | None = None
) -> Promise:
    """Record a promise to pay the balance by `day` (one open promise per debtor)."""
    latest = latest_day(debtor, today)
    if not today < day <= latest:
        raise PromiseError("the date is outside the campaign's limit", latest)
    balance = ledger.balance_minor(session, debtor)
    if balance <= 0:
        raise PromiseError("nothing is owed", latest)
    existing = open_promise(session, debtor)
    if existing is not None:
        existing.status, existing.resolved_at = "replaced", utcnow()
    promise = Promise(
        campaign_id=debtor.campaign_id,
        debtor_id=debtor.id,
        promised_on=day,
        amount_minor=balance,
        currency=debtor.currency,
        paid_before_minor=ledger.paid_minor(session, debtor),
        status="open",
    )
    session.add(promise)
    session.flush()
    events.record(
        session,
        debtor,
        "promise",
        channel=channel,
        data={"date": day.isoformat(), "amount": str(from_minor(balance, debtor.currency)),
              "currency": debtor.currency},
        key=f"promise:{promise.id}",
    )  # fmt: skip
    return promise


def resolve_due(session: Session, today: dt.date) -> dict[str, int]:
    """Mark every promise whose date has passed as kept (paid in full since) or broken."""
    counts = {"kept": 0, "broken": 0}
    query = select(Promise).where(Promise.status == "open", Promise.promised_on < today)
    for promise in session.scalars(query.with_for_update(skip_locked=True)).all():
        debtor = session.get(Debtor, promise.debtor_id)
        paid_since = ledger.paid_minor(session, debtor) - promise.paid_before_minor
        promise.status = "kept" if paid_since >= promise.amount_minor else "broken"
        promise.resolved_at = utcnow()
        counts[promise.status] += 1
    session.flush()
    return counts
