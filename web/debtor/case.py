"""The case's state as the debtor's page shows it: kindly.cases decides, this formats."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_date
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.cases.read import case_of
from kindly.cases.state import Case
from kindly.disputes import service as disputes
from kindly.feedback import survey
from kindly.messaging import optout
from kindly.money import format_minor
from kindly.payments.models import Plan
from renderer.view import CaseView, DebtorView

REPLY_ORDER = ("email", "sms", "letter")


def reply_channel(debtor: Debtor, case: Case) -> str:
    """How a person's answer reaches the debtor: the channel they chose if it reaches them,
    else the first that does (email, SMS, letter), else their page."""
    chosen = case.preferred or debtor.channel  # read with the case: no query of its own
    for channel in (chosen, *REPLY_ORDER):
        if channel not in case.opted_out and optout.address_of(debtor, channel):
            return channel
    return "page"


def case_view(
    session: Session, debtor: Debtor, view: DebtorView, today: dt.date | None = None
) -> tuple[Case, CaseView]:
    """The debtor's case as of `today`, and what the page's first screen shows of it (a few
    statements: the case's facts, and a plan's saved method or a dispute's reply channel)."""
    today = today or dt.date.today()
    case = case_of(session, debtor, today)
    locale = view.locale.replace("-", "_")

    def money(minor: int) -> str:
        return format_minor(minor, debtor.currency, locale)

    def day(value: dt.date | None) -> str:
        return format_date(value, format="long", locale=locale) if value else ""

    values: dict = {"state": case.state, "asks": case.asks_for_payment}
    plan = case.plan
    if case.state in ("plan_agreed", "plan_active") and plan is not None:
        saved = session.get(Plan, plan.plan_id)
        values |= {
            "next_amount": money(plan.next_minor) if plan.next_minor is not None else "",
            "next_date": day(plan.next_due),
            "next_due_now": case.state == "plan_agreed"
            or (plan.next_due is not None and plan.next_due <= today),
            "paid_count": plan.paid_count,
            "count": plan.count,
            "method_saved": bool(saved is not None and saved.method_ref),
            "missed_to_end": bool(saved is not None and saved.missed_to_end),
        }
    promise = case.promise
    if case.state in ("promised", "promise_broken") and promise is not None:
        values |= {
            "promise_amount": money(promise.amount_minor),
            "promise_date": day(promise.on),
            "promise_today": promise.on == today,
        }
    if case.hold_until is not None and case.state in ("breathing_space", "on_hold"):
        values["hold_until"] = day(case.hold_until)
    if case.state == "disputed":
        values["reply_by"] = reply_channel(debtor, case)
    values |= dispute_values(session, debtor, today, money, day)
    if values.get("dispute_state") == "open" and values.get("reply_by") == "letter":
        values["reply_by"] = "page"  # a decision is sent by email or SMS, or shown here
    values["survey"] = survey.pending(session, debtor, case.state)
    return case, CaseView(**values)


DISPUTE_SHOWN_DAYS = 60
"""Days the page keeps showing how a dispute was decided."""


def dispute_values(session: Session, debtor: Debtor, today: dt.date, money, day) -> dict:
    """The debtor's latest dispute for the first screen: open (the answer's date), or decided
    within DISPUTE_SHOWN_DAYS (the outcome and the answer); {} otherwise."""
    dispute = disputes.current(session, debtor)
    if dispute is None:
        return {}
    if dispute.state != "open":
        decided = dispute.resolved_at.date() if dispute.resolved_at else today
        if (today - decided).days > DISPUTE_SHOWN_DAYS:
            return {}
    return {
        "dispute_state": dispute.state,
        "dispute_reason": dispute.reason,
        "dispute_answer_by": day(dispute.answer_by),
        "dispute_outcome": dispute.outcome or "",
        "dispute_answer": dispute.answer or "",
        "dispute_amount": money(debtor.amount_due_minor) if dispute.outcome == "corrected" else "",
    }
