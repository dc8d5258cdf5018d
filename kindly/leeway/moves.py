"""Moving one instalment later, or a monthly plan to another day of the month, from the
debtor's page: checked against the time rules, applied under the plan's row lock, recorded
once (kindly.payments.changes: the `plan_changed` event on the case's timeline)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.leeway import Refused
from kindly.payments import changes, plans, reschedule
from kindly.payments.models import Instalment, Payment, Plan
from kindly.rules.time import TimeRules


@dataclass(frozen=True)
class Window:
    """The days one instalment may move to: `first` to `last`, both inclusive."""

    instalment: Instalment
    first: dt.date
    last: dt.date
    limit: str  # what sets `last`: "days" (the rules' N) or "next" (the next instalment)


def _locked_plan(session: Session, debtor: Debtor) -> Plan:
    plan = plans.open_plan(session, debtor)
    if plan is None:
        raise Refused("no_plan")
    # one change at a time per plan: the counts below stay true under a double tap
    session.scalar(select(Plan.id).where(Plan.id == plan.id).with_for_update())
    return plan


def _in_flight(session: Session, instalment: Instalment) -> bool:
    return (
        session.scalar(
            select(Payment.id).where(
                Payment.instalment_id == instalment.id, Payment.status == "started"
            )
        )
        is not None
    )


def movable(session: Session, plan: Plan) -> list[Instalment]:
    """The plan's instalments whose date may still change (due, nothing being paid)."""
    return [
        i for i in plan.instalments if i.status in reschedule.MOVABLE and not _in_flight(session, i)
    ]


def window(plan: Plan, instalment: Instalment, rules: TimeRules, today: dt.date) -> Window:
    """Where an instalment may move: later than its day and than today, by at most the rules'
    days, and before the next instalment (the order of the plan stays)."""
    first = max(instalment.due_date, today) + dt.timedelta(days=1)
    last, limit = instalment.due_date + dt.timedelta(days=rules.move_days), "days"
    later = [
        i.due_date for i in plan.instalments if i.seq > instalment.seq and i.status != "canceled"
    ]
    if later and min(later) - dt.timedelta(days=1) < last:
        last, limit = min(later) - dt.timedelta(days=1), "next"
    return Window(instalment, first, last, limit)


def moves_left(session: Session, plan: Plan, rules: TimeRules) -> int:
    """How many more instalments of this plan the debtor may move."""
    return max(rules.moves_per_plan - changes.count(session, plan.id, "move"), 0)


def day_changes_left(session: Session, plan: Plan, rules: TimeRules) -> int:
    """How many more times the debtor may change this plan's payment day."""
    return max(rules.day_changes_per_plan - changes.count(session, plan.id, "payment_day"), 0)


def move_instalment(
    session: Session,
    debtor: Debtor,
    instalment_id: int,
    new_date: dt.date,
    rules: TimeRules,
    today: dt.date,
) -> Instalment:
    """Move one of the debtor's due instalments to `new_date`; Refused names the rule."""
    if not rules.can_move:
        raise Refused("move_off")
    plan = _locked_plan(session, debtor)
    instalment = next((i for i in plan.instalments if i.id == instalment_id), None)
    if instalment is None:
        raise Refused("no_plan")
    if instalment not in movable(session, plan):
        raise Refused("not_movable")
    if not moves_left(session, plan, rules):
        raise Refused("moves_used", count=rules.moves_per_plan)
    span = window(plan, instalment, rules, today)
    if span.first > span.last:
        raise Refused("no_room", date=span.last)
    if new_date < span.first:
        raise Refused("too_early", date=span.first)
    if new_date > span.last:
        code = "too_far" if span.limit == "days" else "past_next"
        raise Refused(code, date=span.last, days=rules.move_days)
    before = instalment.due_date
    instalment.due_date, instalment.notified_on = new_date, None  # a new SEPA pre-notice
    changes.record(session, debtor, plan.id, "move", [(instalment.seq, before, new_date)],
                   source="page", instalment_id=instalment.id, channel="web")  # fmt: skip
    return instalment


def day_schedule(
    session: Session, plan: Plan, day: int, today: dt.date
) -> list[tuple[Instalment, dt.date]]:
    """The new dates of the instalments still to come if the plan is paid on `day` of each
    month: the first keeps its month unless that day has passed (then the next month), the
    rest follow a month apart."""
    left = movable(session, plan)
    if not left:
        return []
    start = reschedule.on_day(left[0].due_date, day)
    if start <= today:
        start = reschedule.on_day(reschedule.same_day_later(left[0].due_date, 1), day)
    month = start.replace(day=1)
    return [
        (each, reschedule.on_day(reschedule.same_day_later(month, k), day))
        for k, each in enumerate(left)
    ]


def change_payment_day(
    session: Session, debtor: Debtor, day: int, rules: TimeRules, today: dt.date
) -> list[tuple[Instalment, dt.date]]:
    """Pay what is left of a monthly plan on `day` of each month; Refused names the rule."""
    if not rules.can_change_day:
        raise Refused("day_off")
    plan = _locked_plan(session, debtor)
    if plan.frequency != "monthly":
        raise Refused("not_monthly")
    low, high = rules.payment_days or (1, 28)
    if not low <= day <= high:
        raise Refused("day_range", first=low, last=high)
    if not day_changes_left(session, plan, rules):
        raise Refused("days_used", count=rules.day_changes_per_plan)
    schedule = day_schedule(session, plan, day, today)
    if not schedule:
        raise Refused("not_movable")
    if all(each.due_date == new for each, new in schedule):
        raise Refused("same_day", day=day)
    moved = [(each.seq, each.due_date, new) for each, new in schedule if each.due_date != new]
    for each, new in schedule:
        if each.due_date != new:
            each.due_date, each.notified_on = new, None
    changes.record(session, debtor, plan.id, "payment_day", moved, source="page",
                   extra={"day": day}, channel="web")  # fmt: skip
    return schedule
