"""Reading the facts of many cases at once, and the case of one debtor.

A fixed number of statements per call, whatever the number of debtors: the send plan and the
cockpit's lists ask for thousands of cases at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.cases.models import CaseHold
from kindly.cases.state import Case, Facts, HoldFacts, PlanFacts, PromiseFacts, derive
from kindly.claims.amount import amounts_on
from kindly.infra.db import as_utc
from kindly.payments import ledger
from kindly.payments.models import Instalment, Payment, Plan
from kindly.tracking.models import Event

TRUTHY = ("1", "true", "yes", "y", "ja", "x")
FLAGS = ("vulnerable", "dispute")
"""Imported columns that change a case: a vulnerable debtor is handled by a person; a
`dispute` column marks a claim contested before it reached Kindly."""
CHUNK = 500
CHANNELS = ("email", "sms", "letter")


def _flags(debtor: Debtor) -> frozenset[str]:
    attributes = debtor.attributes or {}
    return frozenset(
        name
        for name in FLAGS
        if attributes.get(name) is not None and str(attributes[name]).strip().lower() in TRUTHY
    )


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _paid(session: Session, debtors: dict[int, Debtor]) -> dict[int, int]:
    paid: dict[int, int] = {}
    for ids in _chunks(list(debtors)):
        rows = session.execute(
            select(Payment.debtor_id, Payment.currency, func.sum(Payment.amount_minor))
            .where(Payment.debtor_id.in_(ids), Payment.status == "succeeded")
            .group_by(Payment.debtor_id, Payment.currency)
        )
        for debtor_id, currency, total in rows:
            if currency == debtors[debtor_id].currency:  # only the claim's currency counts
                paid[debtor_id] = int(total or 0)
    return paid


def _holds(session: Session, ids: Sequence[int]) -> dict[int, list[HoldFacts]]:
    holds: dict[int, list[HoldFacts]] = {}
    for chunk in _chunks(ids):
        rows = session.scalars(
            select(CaseHold)
            .where(CaseHold.debtor_id.in_(chunk), CaseHold.released_at.is_(None))
            .order_by(CaseHold.id)
        )
        for hold in rows:
            holds.setdefault(hold.debtor_id, []).append(
                HoldFacts(hold.id, hold.reason, as_utc(hold.placed_at), hold.until)
            )
    return holds


def _plans(session: Session, ids: Sequence[int]) -> dict[int, PlanFacts]:
    plans: dict[int, PlanFacts] = {}
    for chunk in _chunks(ids):
        latest = select(func.max(Plan.id)).where(Plan.debtor_id.in_(chunk)).group_by(Plan.debtor_id)
        rows = session.execute(
            select(Plan.id, Plan.debtor_id, Plan.status, Plan.count, Instalment)
            .join(Instalment, Instalment.plan_id == Plan.id)
            .where(Plan.id.in_(latest))
            .order_by(Plan.id, Instalment.seq)
        )
        grouped: dict[int, list] = {}
        for plan_id, debtor_id, status, count, instalment in rows:
            grouped.setdefault(debtor_id, []).append((plan_id, status, count, instalment))
        for debtor_id, items in grouped.items():
            plan_id, status, count, _ = items[0]
            instalments = [item[3] for item in items]
            upcoming = next((i for i in instalments if i.status in ("due", "failed")), None)
            plans[debtor_id] = PlanFacts(
                plan_id=plan_id,
                status=status,
                count=count,
                paid_count=sum(1 for i in instalments if i.status == "paid"),
                next_minor=upcoming.amount_minor if upcoming else None,
                next_due=upcoming.due_date if upcoming else None,
            )
    return plans


def _latest_events(session: Session, ids: Sequence[int], types: tuple[str, ...]) -> list[Event]:
    """Each debtor's latest event of each type."""
    found: list[Event] = []
    for chunk in _chunks(ids):
        latest = (
            select(func.max(Event.id))
            .where(Event.debtor_id.in_(chunk), Event.type.in_(types))
            .group_by(Event.debtor_id, Event.type, Event.channel)
        )
        found += session.scalars(select(Event).where(Event.id.in_(latest))).all()
    return sorted(found, key=lambda event: event.id)  # the later one wins where both count


def promise_of(event: Event, fallback_minor: int) -> tuple[dt.date, int] | None:
    """The day and amount of a `promise` event (None when its date is unreadable). Amounts
    were once stored as text; both spellings are read."""
    data = event.data or {}
    try:
        day = dt.date.fromisoformat(str(data.get("date", "")))
    except ValueError:
        return None
    try:
        amount = int(str(data.get("amount_minor") or 0))
    except ValueError:
        amount = 0
    return day, amount or fallback_minor


def facts_for(
    session: Session, debtors: Sequence[Debtor], today: dt.date | None = None
) -> dict[int, Facts]:
    """The facts of each debtor's case on `today` (default today), read in a handful of
    statements; the amount is what is owed that day (kindly.claims.amount, with interest)."""
    by_id = {debtor.id: debtor for debtor in debtors}
    ids = list(by_id)
    owed = amounts_on(session, list(by_id.values()), today or dt.date.today())
    paid = _paid(session, by_id)
    holds = _holds(session, ids)
    plans = _plans(session, ids)
    promises: dict[int, PromiseFacts] = {}
    requested: dict[int, dt.datetime] = {}
    opted: dict[int, dict[str, tuple[int, bool]]] = {}
    preferred: dict[int, str] = {}
    types = ("promise", "plan_requested", "opted_out", "opted_in", "preference")
    for event in _latest_events(session, ids, types):
        debtor = by_id[event.debtor_id]
        if event.type == "promise":
            read = promise_of(event, owed[debtor.id].total_minor)
            if read is not None:
                made = as_utc(event.occurred_at)
                promises[debtor.id] = PromiseFacts(
                    read[0], read[1], made, ledger.paid_between(session, debtor, made)
                )
        elif event.type == "plan_requested":
            requested[debtor.id] = as_utc(event.occurred_at)
        elif event.type == "preference":
            chosen = (event.data or {}).get("preferred_channel")
            if chosen in CHANNELS:
                preferred[debtor.id] = chosen
        else:  # the latest of opted_out / opted_in per channel decides
            channel = (event.data or {}).get("channel") or event.channel or "*"
            names = ("email", "sms", "letter") if channel == "*" else (channel,)
            mine = opted.setdefault(debtor.id, {})
            for name in names:
                if name not in mine or mine[name][0] < event.id:
                    mine[name] = (event.id, event.type == "opted_out")
    return {
        debtor_id: Facts(
            debtor_id=debtor_id,
            amount_due_minor=owed[debtor_id].total_minor,
            paid_minor=paid.get(debtor_id, 0),
            due_date=debtor.due_date,
            flags=_flags(debtor),
            holds=tuple(holds.get(debtor_id, ())),
            plan=plans.get(debtor_id),
            promise=promises.get(debtor_id),
            plan_requested_at=requested.get(debtor_id),
            opted_out=frozenset(name for name, (_, out) in opted.get(debtor_id, {}).items() if out),
            erased=bool((debtor.attributes or {}).get("erased_at")),
            preferred=preferred.get(debtor_id),
        )
        for debtor_id, debtor in by_id.items()
    }


def cases_for(
    session: Session,
    debtors: Sequence[Debtor],
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> dict[int, Case]:
    """The case of each debtor (by id) as of `today`."""
    now = now or dt.datetime.now(dt.UTC)
    today = today or now.date()
    return {
        debtor_id: derive(facts, today, now)
        for debtor_id, facts in facts_for(session, debtors, today).items()
    }


def case_of(
    session: Session, debtor: Debtor, today: dt.date | None = None, now: dt.datetime | None = None
) -> Case:
    """One debtor's case as of `today`."""
    return cases_for(session, [debtor], today, now)[debtor.id]
