"""The daily run over every case: charge the instalments due, judge the promises whose day
passed. One function for `kindly payments collect` and the scheduled job."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.cases.models import CaseHold
from kindly.cases.read import cases_for
from kindly.claims.balance import balance_minor
from kindly.payments import plans, promises
from kindly.payments.models import Plan


def disputed_with_plans(session: Session, today: dt.date) -> set[int]:
    """Debtors with a running plan whose case is disputed: nobody is charged for a claim
    they contest until a person has answered them."""
    running = select(Plan.debtor_id).where(Plan.status.in_(plans.OPEN))
    debtors = session.scalars(select(Debtor).where(Debtor.id.in_(running))).all()
    cases = cases_for(session, debtors, today)
    return {debtor_id for debtor_id, case in cases.items() if case.state == "disputed"}


def held_for_a_person(session: Session) -> set[int]:
    """Debtors with a running plan who asked a person for help (hardship on their page: a
    manual hold from the page): nothing is charged automatically until it is released."""
    running = select(Plan.debtor_id).where(Plan.status.in_(plans.OPEN))
    return set(
        session.scalars(
            select(CaseHold.debtor_id).where(
                CaseHold.debtor_id.in_(running),
                CaseHold.reason == "manual",
                CaseHold.source == "page",
                CaseHold.released_at.is_(None),
            )
        )
    )


def collect(session: Session, settings, today: dt.date) -> dict[str, Any]:
    """Charge what is due (not for disputed cases, nor those a person must look at first) and
    judge promises; what was done."""
    disputed = disputed_with_plans(session, today)
    held = held_for_a_person(session) - disputed
    run = plans.collect_with(session, settings, today, disputed | held)
    resolved = promises.resolve_due(
        session, today, lambda debtor: balance_minor(session, debtor, today)
    )
    return {
        "day": today.isoformat(),
        "charged": run.charged,
        "succeeded": run.succeeded,
        "failed": run.failed,
        "processing": run.processing,
        "plans_completed": run.completed,
        "plans_broken": run.broken,
        "plans_disputed": run.skipped - len(held) if run.skipped else 0,
        "plans_held": len(held) if run.skipped else 0,
        "sepa_notices": len(run.notices),
        "promises": resolved,
    }
