"""Costs booked at cadence steps, by type and legal basis (RDG § 13a).

The rules (kindly.rules.costrules) say which cost a step adds; `book_step` books them when the
step's message is committed (kindly.messaging.stepcosts calls it). A cost is booked once per
(case, step, type): the database's unique key, not only this module, refuses a second row, so
a retried, re-planned or duplicated send, two workers at once or a run after a restart book it
once. Nothing is booked on a case that is held (disputed, breathing space, a manager's hold,
vulnerable, …) or paid, and a type's cap bounds its total on a case.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.claims.cost_booking import CostBooking
from kindly.money import exponent
from kindly.rules.costrules import decimal_of

log = logging.getLogger(__name__)

CHUNK = 5000
"""Debtor ids per statement on SQLite (well below its bound parameters)."""


@dataclass(frozen=True)
class CostLine:
    """What a case owes for one type of cost on one legal basis (all its steps together)."""

    cost_type: str
    basis: str
    amount_minor: int
    currency: str
    count: int  # how many steps booked it


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    unique = sorted(set(ids))
    for start in range(0, len(unique), CHUNK):
        yield unique[start : start + CHUNK]


def booked_minor(session: Session, debtor_ids: Sequence[int]) -> dict[int, int]:
    """The costs booked on each debtor's case, by debtor id (absent: none).

    Only costs in the case's own currency count (as payments do, kindly.payments.ledger). One
    statement on PostgreSQL (the ids as one array), one per 5,000 debtors on SQLite.
    """
    out: dict[int, int] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    batches = [sorted(set(debtor_ids))] if postgres else list(_chunks(debtor_ids))
    for batch in batches:
        if not batch:
            continue
        if postgres:
            among = CostBooking.debtor_id == any_(
                bindparam("debtor_ids", value=batch, type_=ARRAY(Integer))
            )
        else:
            among = CostBooking.debtor_id.in_(batch)
        rows = session.execute(
            select(CostBooking.debtor_id, func.sum(CostBooking.amount_minor))
            .join(Debtor, Debtor.id == CostBooking.debtor_id)
            .where(among, CostBooking.currency == Debtor.currency)
            .group_by(CostBooking.debtor_id)
        ).all()
        out.update({debtor_id: int(total) for debtor_id, total in rows if total})
    return out


def costs_of(session: Session, debtor: Debtor) -> list[CostLine]:
    """The case's costs by type and basis, in the order they were first booked."""
    rows = session.execute(
        select(
            CostBooking.cost_type,
            CostBooking.basis,
            func.sum(CostBooking.amount_minor),
            func.count(CostBooking.id),
            func.min(CostBooking.id),
        )
        .where(CostBooking.debtor_id == debtor.id, CostBooking.currency == debtor.currency)
        .group_by(CostBooking.cost_type, CostBooking.basis)
        .order_by(func.min(CostBooking.id))
    ).all()
    return [
        CostLine(kind, basis, int(total), debtor.currency, int(count))
        for kind, basis, total, count, _ in rows
    ]


def bookings_of(session: Session, debtor: Debtor) -> list[CostBooking]:
    """Every cost booked on the case, oldest first (the cockpit lists them by step)."""
    return list(
        session.scalars(
            select(CostBooking).where(CostBooking.debtor_id == debtor.id).order_by(CostBooking.id)
        )
    )


def step_costs(treatment: dict[str, Any] | None, step: int) -> list[dict[str, Any]]:
    """The costs a debtor's resolved treatment adds at `step` (validated by the rules)."""
    return [c for c in (treatment or {}).get("costs") or [] if c.get("step") == step]


def minor_of(text: str, currency: str) -> int | None:
    """A rules amount ("5.00") in the currency's minor units; None when the currency has
    fewer decimals than it is written with (2.50 for JPY): such a cost is not booked."""
    value = decimal_of(text)
    if value is None:
        return None
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def _insert(session: Session, values: dict[str, Any]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING on the step's key: the new row's id, or None when a
    booking of this (case, step, type) exists (also one a concurrent worker just made)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(CostBooking.__table__)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["debtor_id", "step", "cost_type"])
        .returning(CostBooking.__table__.c.id)
    )
    return session.execute(statement).scalar()


def book_step(
    session: Session,
    debtor: Debtor,
    step: int,
    treatment: dict[str, Any] | None,
    *,
    hold: str | None,
    channel: str | None = None,
    rule_version: int = 0,
    at: dt.datetime | None = None,
) -> list[CostBooking]:
    """Book the costs the treatment adds at `step` on this case; returns the rows booked now.

    `hold` is the case's hold as kindly.cases derives it at this moment (paid, dispute_open,
    breathing_space, on_hold, vulnerable, …): with any hold nothing is booked. A step whose
    costs were booked (with its first message, under the rules then in force) books nothing
    more, not even a type new rules add to it; a type's cap counts every step's bookings. Both
    are read under a lock on the debtor's row, so two bookings of one case take turns; the
    unique key (debtor, step, type) refuses a second row whatever happens.
    """
    costs = step_costs(treatment, step)
    if not costs or hold is not None:
        return []
    # One booking at a time per case: the cap below reads what earlier steps booked. FOR NO
    # KEY UPDATE, not FOR UPDATE: the send's own inserts (its event) hold a key-share lock on
    # the debtor's row, and two sends of one case at once would deadlock on FOR UPDATE.
    session.execute(select(Debtor.id).where(Debtor.id == debtor.id).with_for_update(key_share=True))
    step_booked = session.scalar(
        select(CostBooking.id).where(CostBooking.debtor_id == debtor.id, CostBooking.step == step)
    )
    if step_booked is not None:
        return []  # the step's costs were booked with its first message (whatever rules now say)
    booked: list[CostBooking] = []
    for cost in costs:
        amount = minor_of(cost["amount"], debtor.currency)
        if amount is None:
            log.warning("cost %s at step %d not booked: %s has no such minor unit",
                        cost["type"], step, debtor.currency)  # fmt: skip
            continue
        if "cap" in cost:
            cap = minor_of(cost["cap"], debtor.currency)
            so_far = session.scalar(
                select(func.coalesce(func.sum(CostBooking.amount_minor), 0)).where(
                    CostBooking.debtor_id == debtor.id,
                    CostBooking.cost_type == cost["type"],
                    CostBooking.currency == debtor.currency,
                )
            )
            amount = min(amount, max((cap or 0) - int(so_far or 0), 0))
            if amount <= 0:
                continue  # the cap is reached: nothing more of this type on this case
        values = {
            "campaign_id": debtor.campaign_id, "debtor_id": debtor.id, "step": step,
            "cost_type": cost["type"], "amount_minor": amount, "currency": debtor.currency,
            "basis": cost["basis"].strip(), "channel": channel, "rule_version": rule_version,
            "booked_at": at or dt.datetime.now(dt.UTC),
        }  # fmt: skip
        new_id = _insert(session, values)
        if new_id is not None:
            booked.append(session.get(CostBooking, new_id))
    return booked
