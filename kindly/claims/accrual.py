"""Interest for many debtors at once, read from the database (the calculation itself is
kindly.claims.interest, pure): the rules in force, the base-rate table, payments, write-offs,
plans and open dispute holds, in a fixed number of statements whatever the number of debtors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Integer, String, and_, column, func, select, table
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.claims import rates as rates_module
from kindly.claims.interest import NONE, Breakdown, Piece, Terms, compute
from kindly.claims.writeoffs import WriteOff
from kindly.payments import allocation
from kindly.payments.models import Payment, Plan
from kindly.rules import interest as vocabulary
from kindly.rules.models import RuleSet

_HOLDS = table(
    "case_hold",
    column("debtor_id", Integer),
    column("reason", String),
    column("placed_at", DateTime(timezone=True)),
    column("released_at", DateTime(timezone=True)),
)
"""kindly.cases' holds, read as a table: the cases package reads claims, not the other way."""

PAUSING = ("agreed", "active", "completed")
"""Plan statuses during which no interest accrues (a deferral the creditor agreed to)."""


def interest_bases(session: Session, debtors: Sequence[Debtor]) -> dict[int, list[Piece]]:
    """The pieces that bear interest, by debtor id: each item of the case that is neither
    closed nor disputed (its principal from its date: a disputed item bears none while the
    dispute holds it), or for a case given as one amount its principal from its due date."""
    from kindly.claims.items import items_of

    every = items_of(session, [debtor.id for debtor in debtors])
    bases: dict[int, list[Piece]] = {}
    for debtor in debtors:
        items = every.get(debtor.id)
        if items:
            bases[debtor.id] = [
                Piece(
                    item.item_id,
                    item.description or item.item_id,
                    item.principal_minor if item.principal_minor is not None else item.amount_minor,
                    item.date,
                )
                for item in items
                if item.state in ("open", "paid")
            ]
            continue
        parts = allocation.parts_of(debtor)
        principal = parts["principal"] if parts is not None else debtor.amount_due_minor
        bases[debtor.id] = [Piece("claim", debtor.reference, principal, debtor.due_date)]
    return bases


def terms_for(document: dict[str, Any] | None, debtor: Debtor) -> Terms:
    """The interest the rules document's `interest` key sets for this debtor."""
    spec = (document or {}).get("interest")
    if not isinstance(spec, dict):
        return NONE
    errors: list[str] = []
    vocabulary.check_interest(spec, errors)
    if errors:  # a saved document was validated; an old or hand-made one charges nothing
        return NONE
    basis = spec.get("basis", "none")
    if basis == "contractual":
        return Terms("contractual", rate=vocabulary.rate_of(spec["rate"]))
    if basis == "statutory":
        column = spec.get("debtor_field", vocabulary.DEFAULT_FIELD)
        party = vocabulary.party_of((debtor.attributes or {}).get(column))
        return Terms("statutory", party=party or spec.get("debtor", "consumer"))
    return NONE


SQLITE_PARAMETERS = 30_000
"""Below SQLite's limit of 32,766 parameters in one statement."""


def _in(column: Any, debtors: Sequence[Debtor], session: Session) -> ColumnElement[bool]:
    """`column IN (the debtors' ids)` as one statement whatever their number: one array
    parameter on PostgreSQL; on SQLite a list of parameters, or beyond its limit the debtors
    of their campaigns (a superset the caller filters)."""
    ids = [debtor.id for debtor in debtors]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import BigInteger, any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam("ids_" + column.name, ids, type_=ARRAY(BigInteger)))
    if len(ids) <= SQLITE_PARAMETERS:
        return column.in_(ids)
    campaigns = sorted({debtor.campaign_id for debtor in debtors})
    return column.in_(select(Debtor.id).where(Debtor.campaign_id.in_(campaigns)))


def documents(session: Session, campaign_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Each campaign's rules document in force (one statement)."""
    if not campaign_ids:
        return {}
    latest = (
        select(RuleSet.campaign_id, func.max(RuleSet.version).label("version"))
        .where(RuleSet.campaign_id.in_(sorted(set(campaign_ids))))
        .group_by(RuleSet.campaign_id)
        .subquery()
    )
    rows = session.execute(
        select(RuleSet.campaign_id, RuleSet.document).join(
            latest,
            and_(RuleSet.campaign_id == latest.c.campaign_id, RuleSet.version == latest.c.version),
        )
    )
    return {campaign_id: document or {} for campaign_id, document in rows}


def breakdowns(session: Session, debtors: Sequence[Debtor], day: dt.date) -> dict[int, Breakdown]:
    """The interest breakdown of each debtor whose campaign charges interest, by debtor id.

    A fixed number of statements whatever the number of debtors: the rules in force, and for
    the debtors that bear interest the base-rate table, their payments and their plans.
    """
    if not debtors:
        return {}
    docs = documents(session, [debtor.campaign_id for debtor in debtors])
    terms = {debtor.id: terms_for(docs.get(debtor.campaign_id), debtor) for debtor in debtors}
    bearing = [debtor for debtor in debtors if terms[debtor.id].charges]
    if not bearing:
        return {}
    by_id = {debtor.id: debtor for debtor in bearing}
    table = rates_module.table(session) if any(
        terms[i].basis == "statutory" for i in by_id
    ) else None  # fmt: skip
    paid: dict[int, list[tuple[dt.date, int]]] = {}
    rows = session.execute(
        select(
            Payment.debtor_id, Payment.currency, Payment.received_on, Payment.updated_at,
            Payment.amount_minor,
        ).where(_in(Payment.debtor_id, bearing, session), Payment.status == "succeeded")
    )  # fmt: skip
    for debtor_id, currency, received_on, updated_at, amount in rows:
        if debtor_id not in by_id or currency != by_id[debtor_id].currency:
            continue  # only the claim's currency counts
        arrived = received_on or _utc_day(updated_at)
        paid.setdefault(debtor_id, []).append((arrived, int(amount)))
    # a part of the claim given up (a settlement offer taken) settles like money on its day:
    # no interest runs on what was written off
    given_up = session.execute(
        select(WriteOff.debtor_id, WriteOff.currency, WriteOff.booked_at, WriteOff.amount_minor)
        .where(_in(WriteOff.debtor_id, bearing, session))
    )  # fmt: skip
    for debtor_id, currency, booked_at, amount in given_up:
        if debtor_id in by_id and currency == by_id[debtor_id].currency:
            paid.setdefault(debtor_id, []).append((_utc_day(booked_at), int(amount)))
    pauses: dict[int, list[tuple[dt.date, dt.date | None]]] = {}
    plans = session.execute(
        select(Plan.debtor_id, Plan.status, Plan.agreed_at, Plan.ended_at).where(
            _in(Plan.debtor_id, bearing, session)
        )
    )
    for debtor_id, status, agreed_at, ended_at in plans:
        if debtor_id not in by_id:
            continue
        start = _utc_day(agreed_at)
        if status in PAUSING:
            pauses.setdefault(debtor_id, []).append((start, None))
        elif ended_at is not None:  # broken or canceled: interest ran again from then
            pauses.setdefault(debtor_id, []).append((start, _utc_day(ended_at)))
    # an open dispute of the whole case holds it: no interest step while a person looks at it
    # (rejected, the hold is released and the amount of any later day counts every day again)
    disputed = session.execute(
        select(_HOLDS.c.debtor_id, _HOLDS.c.placed_at).where(
            _in(_HOLDS.c.debtor_id, bearing, session),
            _HOLDS.c.reason == "dispute",
            _HOLDS.c.released_at.is_(None),
        )
    )
    for debtor_id, placed_at in disputed:
        if debtor_id in by_id:
            pauses.setdefault(debtor_id, []).append((_utc_day(placed_at), None))
    bases = interest_bases(session, bearing)
    out: dict[int, Breakdown] = {}
    for debtor in bearing:
        parts = allocation.parts_of(debtor)
        out[debtor.id] = compute(
            bases[debtor.id], terms[debtor.id], day, table=table,
            payments=paid.get(debtor.id, ()), pauses=pauses.get(debtor.id, ()),
            fees_minor=parts["fees"] if parts else 0,
            prior_interest_minor=parts["interest"] if parts else 0,
            order=allocation.order_of(debtor.campaign),
        )  # fmt: skip
    return out


def _utc_day(moment: dt.datetime) -> dt.date:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        return moment.date()
    return moment.astimezone(dt.UTC).date()


def accrued_minor(session: Session, debtors: Sequence[Debtor], day: dt.date) -> dict[int, int]:
    """Interest accrued up to and including `day` (settled or not: the balance subtracts what
    was paid), by debtor id (absent: none)."""
    return {
        debtor_id: breakdown.interest_minor
        for debtor_id, breakdown in breakdowns(session, debtors, day).items()
        if breakdown.interest_minor
    }
