"""Time within the rules, from the debtor's page: move one instalment, change a plan's
payment day, ask for breathing space. The view parses the form, kindly.leeway decides, and a
refusal comes back as its own message in the debtor's language (422), nothing changed."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, redirect, request

from kindly.cases.read import case_of
from kindly.leeway import Refused, breathing, moves
from kindly.payments import plans
from kindly.rules.time import time_rules_for
from web.context import context
from web.debtor import limits
from web.debtor.hits import confirm_person
from web.debtor.pay import Page

bp = Blueprint("leeway", __name__)


def _why(page: Page, exc: Refused) -> str:
    """The refusal in the debtor's language, its dates written their way."""
    values = {
        key: page.date(value) if isinstance(value, dt.date) else value
        for key, value in exc.values.items()
    }
    return page.p[f"why_time_{exc.code}"].format(**values)


def _int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 6 else None


def _date(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat((raw or "").strip()[:10])
    except ValueError:
        return None


@bp.route("/s/<token>/plan/move", methods=["GET", "POST"])
@limits.limited("plan-move")
def move(token: str):
    """Move one due instalment later, within the rules' days and before the next one."""
    today = dt.date.today()
    with context().db.session() as session:
        page = Page(session, token)
        plan = plans.open_plan(session, page.debtor)
        if plan is None:
            return redirect(f"/s/{token}/plan", code=303)
        rules = time_rules_for(session, page.debtor)
        error, chosen = None, _int(request.values.get("instalment"))
        if request.method == "POST":
            try:
                new_date = _date(request.form.get("date"))
                if new_date is None or chosen is None:
                    raise Refused("bad_date")
                moved = moves.move_instalment(session, page.debtor, chosen, new_date, rules, today)
            except Refused as exc:
                session.rollback()
                error = _why(page, exc)
            else:
                confirm_person(session, page.debtor)
                return redirect(f"/s/{token}/plan/agreed?done=moved&i={moved.seq}", code=303)
        else:
            page.looked("plan-move")
        plan = plans.open_plan(session, page.debtor)
        if plan is None:  # the plan ended while the debtor was choosing
            return redirect(f"/s/{token}/plan", code=303)
        left = moves.moves_left(session, plan, rules) if rules.can_move else 0
        windows = [
            span
            for span in (moves.window(plan, i, rules, today) for i in moves.movable(session, plan))
            if span.first <= span.last
        ]
        if chosen is None and windows:
            chosen = windows[0].instalment.id
        return page.respond(
            "web/plan_move.html",
            422 if error else 200,
            plan=plan,
            rules=rules,
            left=left,
            windows=windows if left else [],
            chosen=chosen,
            error=error,
        )


@bp.route("/s/<token>/plan/day", methods=["GET", "POST"])
@limits.limited("plan-day")
def payment_day(token: str):
    """Choose another day of the month for what is left of a monthly plan: the new schedule
    first, then the change."""
    today = dt.date.today()
    with context().db.session() as session:
        page = Page(session, token)
        plan = plans.open_plan(session, page.debtor)
        if plan is None:
            return redirect(f"/s/{token}/plan", code=303)
        rules = time_rules_for(session, page.debtor)
        error, day = None, _int(request.values.get("day"))
        preview = []
        if request.method == "POST":
            try:
                if day is None:
                    raise Refused("day_range", first=(rules.payment_days or (1, 28))[0],
                                  last=(rules.payment_days or (1, 28))[1])  # fmt: skip
                moves.change_payment_day(session, page.debtor, day, rules, today)
            except Refused as exc:
                session.rollback()
                error = _why(page, exc)
            else:
                confirm_person(session, page.debtor)
                return redirect(f"/s/{token}/plan/agreed?done=day&day={day}", code=303)
        else:
            page.looked("plan-day")
            low, high = rules.payment_days or (1, 28)
            if day is not None and plan.frequency == "monthly" and low <= day <= high:
                preview = moves.day_schedule(session, plan, day, today)
        plan = plans.open_plan(session, page.debtor)
        if plan is None:  # the plan ended while the debtor was choosing
            return redirect(f"/s/{token}/plan", code=303)
        left = moves.day_changes_left(session, plan, rules) if rules.can_change_day else 0
        return page.respond(
            "web/plan_day.html",
            422 if error else 200,
            plan=plan,
            rules=rules,
            left=left,
            day=day,
            preview=preview,
            error=error,
        )


@bp.route("/s/<token>/breathing", methods=["GET", "POST"])
@limits.limited("breathing")
def breathing_space(token: str):
    """Ask for a pause of contact and costs, with an optional reason."""
    today = dt.date.today()
    with context().db.session() as session:
        page = Page(session, token)
        rules = time_rules_for(session, page.debtor)
        error = None
        days = _int(request.form.get("days")) if request.method == "POST" else None
        reason = (request.form.get("reason") or "")[:32]
        if request.method == "POST":
            try:
                if days is None:
                    raise Refused("breathing_days", days=rules.breathing_days)
                breathing.ask(session, page.debtor, days, reason, rules, today)
            except Refused as exc:
                session.rollback()
                error = _why(page, exc)
            else:
                confirm_person(session, page.debtor)
                person = "1" if reason in breathing.TO_A_PERSON else "0"
                return redirect(f"/s/{token}/breathing?done=1&person={person}", code=303)
        else:
            page.looked("breathing")
        case = case_of(session, page.debtor, today)
        again = breathing.next_possible(session, page.debtor, rules)
        return page.respond(
            "web/breathing.html",
            422 if error else 200,
            rules=rules,
            case=case,
            again=again if again is not None and again > today else None,
            reasons=breathing.REASONS,
            days=days or rules.breathing_days,
            reason=reason,
            error=error,
            done=request.args.get("done") == "1",
            person=request.args.get("person") == "1",
        )
