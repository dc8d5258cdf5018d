"""Changing an agreed plan's dates: the debtor's own moves (kindly.leeway checks them against
the campaign's rules) and the missed-instalment rule (a plan's first miss moves to its end).

Every change keeps the instalments in date order under their numbers, re-numbering when an
instalment goes to the end, and is recorded once (kindly.payments.changes)."""

from __future__ import annotations

import calendar
import datetime as dt

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.payments import changes
from kindly.payments.models import Instalment, Plan

MOVABLE = ("due",)
"""Instalment states whose date may change: a failed one waits for its retry (or is paid
through the link), a paid or canceled one is history."""


def same_day_later(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or that month's last day when it is shorter."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def on_day(day: dt.date, day_of_month: int) -> dt.date:
    """`day`'s month on `day_of_month` (its last day when the month is shorter)."""
    return day.replace(day=min(day_of_month, calendar.monthrange(day.year, day.month)[1]))


def period_after(day: dt.date, frequency: str) -> dt.date:
    """One instalment period after `day`."""
    if frequency == "fortnightly":
        return day + dt.timedelta(days=14)
    return same_day_later(day, 1)


def _live(plan: Plan) -> list[Instalment]:
    return [i for i in sorted(plan.instalments, key=lambda i: i.seq) if i.status != "canceled"]


def _to_last(session: Session, plan: Plan, instalment: Instalment) -> None:
    """Give `instalment` the plan's last number, the later ones one less each (one row at a
    time: the numbers are unique within the plan)."""
    ordered = sorted(plan.instalments, key=lambda i: i.seq)
    last, old = ordered[-1].seq, instalment.seq
    if old == last:
        return
    instalment.seq = last + 1
    session.flush()
    for each in ordered:
        if old < each.seq <= last and each is not instalment:
            each.seq -= 1
            session.flush()
    instalment.seq = last
    session.flush()
    session.expire(plan, ["instalments"])


def move_to_end(session: Session, plan: Plan, instalment: Instalment) -> bool:
    """The missed-instalment rule: the plan's first missed instalment becomes its last, one
    period after the last one, and is charged then. Once per plan, whoever reports the miss
    first (a unique index on the change); False when the plan had its move already."""
    if changes.count(session, plan.id, "missed_to_end"):
        return False
    last = max(i.due_date for i in _live(plan))
    before, seq_before = instalment.due_date, instalment.seq
    debtor = session.get(Debtor, plan.debtor_id)
    try:
        with session.begin_nested():
            changes.record(session, debtor, plan.id, "missed_to_end",
                           [(seq_before, before, period_after(last, plan.frequency))],
                           source="collection", instalment_id=instalment.id)  # fmt: skip
    except IntegrityError:
        return False  # another run moved this plan's miss a moment ago
    instalment.due_date = period_after(last, plan.frequency)
    instalment.status, instalment.retry_on, instalment.notified_on = "due", None, None
    _to_last(session, plan, instalment)
    return True
