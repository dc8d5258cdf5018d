"""Breathing space the debtor asks for on their page: a pause of contact and costs for up to
the rules' days, once per period, with an optional reason. Hardship routes the case to a
person: a manual hold (no automation, no charge of a plan's instalment) until they release it,
and a task in the cockpit's inbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.cases import holds
from kindly.cases.models import CaseHold
from kindly.cases.read import case_of
from kindly.inbox import service as inbox
from kindly.leeway import Refused
from kindly.payments.reschedule import same_day_later
from kindly.rules.time import TimeRules

REASONS = ("illness", "job_loss", "bereavement", "hardship", "other")
"""What a debtor may name as the reason (optional); `hardship` asks for a person."""
TO_A_PERSON = ("hardship",)
HARDSHIP_NOTE = "hardship (asked on the page)"
"""The note of the manual hold a hardship request places: the daily run does not charge a
plan's instalments while it is open."""


def last_from_page(session: Session, debtor: Debtor) -> CaseHold | None:
    """The latest breathing space the debtor asked for themselves."""
    return session.scalar(
        select(CaseHold)
        .where(
            CaseHold.debtor_id == debtor.id,
            CaseHold.reason == "breathing_space",
            CaseHold.source == "page",
        )
        .order_by(CaseHold.id.desc())
        .limit(1)
    )


def next_possible(session: Session, debtor: Debtor, rules: TimeRules) -> dt.date | None:
    """The first day the debtor may ask again, when their last request is inside the period."""
    last = last_from_page(session, debtor)
    if last is None:
        return None
    return same_day_later(last.placed_at.date(), rules.breathing_every_months)


def ask(
    session: Session,
    debtor: Debtor,
    days: int,
    reason: str,
    rules: TimeRules,
    today: dt.date,
) -> CaseHold:
    """Place the breathing space (and, for hardship, the person's hold and task); Refused
    names the rule a request breaks."""
    if not rules.can_breathe:
        raise Refused("breathing_off")
    if reason and reason not in REASONS:
        raise Refused("reason")
    if not 1 <= days <= rules.breathing_days:
        raise Refused("breathing_days", days=rules.breathing_days)
    # one request at a time per case: the period check stays true under a double tap
    session.scalar(select(Debtor.id).where(Debtor.id == debtor.id).with_for_update())
    case = case_of(session, debtor, today)
    if case.state in ("paid", "closed"):
        raise Refused("nothing_owed")
    if case.state == "breathing_space":
        raise Refused("breathing_now", date=case.hold_until)
    again = next_possible(session, debtor, rules)
    if again is not None and again > today:
        raise Refused("breathing_used", date=again, months=rules.breathing_every_months)
    until = today + dt.timedelta(days=days)
    hold = holds.place(session, debtor, "breathing_space", source="page",
                       note=reason or None, until=until)  # fmt: skip
    if reason in TO_A_PERSON:
        holds.place(session, debtor, "manual", source="page", note=HARDSHIP_NOTE)
        inbox.receive(
            session,
            debtor,
            "hardship",
            f"Breathing space of {days} days asked for on the page, until {until.isoformat()}, "
            "for hardship. Automation is stopped: reminders and plan charges wait for a person "
            "(release the manual hold when you have spoken with the debtor).",
        )
    return hold


def hardship_held(session: Session, debtor_ids: list[int]) -> set[int]:
    """Of these debtors, those whose hardship hold (from the page) is still open."""
    if not debtor_ids:
        return set()
    return set(
        session.scalars(
            select(CaseHold.debtor_id).where(
                CaseHold.debtor_id.in_(debtor_ids),
                CaseHold.reason == "manual",
                CaseHold.source == "page",
                CaseHold.released_at.is_(None),
            )
        )
    )
