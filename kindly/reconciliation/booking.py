"""Booking bank money: one payment row per case an entry pays, with its `paid` event, once.

Every booking goes through `book`, whether a rule matched the entry during an import or a
manager assigned or split it: a `payment` row (provider `bank`, method `bank_transfer`, keyed by
the entry's identity and the split's index, so the database refuses a second one), the `paid`
event a checkout's settlement records (same key shape, same data), the allocation that ties
the payment to its entry, and the instalments of an open plan the money covers. A returned
transfer is a negative row of its own (`reverse`), as a refund is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from kindly.campaigns.items import PaymentItem
from kindly.campaigns.models import Debtor
from kindly.claims import balance, offers
from kindly.infra import metrics
from kindly.infra.db import utcnow
from kindly.money import from_minor
from kindly.payments.models import Payment, Plan
from kindly.payments.plans import OPEN
from kindly.payments.service import record_reversal
from kindly.reconciliation.bulk import among, array_literal, insert_rows
from kindly.reconciliation.models import BankAllocation
from kindly.tracking.models import Event

PROVIDER = "bank"
METHOD = "bank_transfer"
PAYMENT = (
    "campaign_id", "debtor_id", "provider", "provider_ref", "amount_minor", "currency", "status",
    "created_at", "updated_at", "kind", "method", "payer_iban", "received_on",
)  # fmt: skip
EVENT = ("idempotency_key", "campaign_id", "debtor_id", "type", "channel", "variant", "agent",
         "occurred_at", "data")  # fmt: skip
ALLOCATION = ("entry_id", "seq", "campaign_id", "debtor_id", "amount_minor", "payment_id")
LINK = ("payment_id", "item_id", "amount_minor")


@dataclass(frozen=True, slots=True)
class Booking:
    """Money of one entry for one case."""

    entry_id: int
    identity: str
    seq: int
    debtor_id: int
    campaign_id: int
    amount_minor: int
    currency: str
    payer_iban: str | None
    received_on: dt.date | None
    split: bool = False
    item_id: int | None = None  # the case's item the transfer named by its own reference

    @property
    def provider_ref(self) -> str:
        """The payment's key: the entry's identity, with the split's index when split."""
        return f"{self.identity}#{self.seq}" if self.split else self.identity


def book(
    session: Session,
    bookings: Sequence[Booking],
    variants: dict[int, str | None],
    planned: set[int] | None = None,
) -> list[int]:
    """Write the payments, `paid` events and allocations in bulk; settle covered instalments.

    `variants` holds each debtor's variant (events carry it); `planned`, when the caller
    knows it, the debtors with an open plan (None: look them up). Returns the payment ids.
    """
    if not bookings:
        return []
    ids = write(session.connection(), bookings, variants)
    settle_instalments(session, bookings, planned)
    # a transfer of an offer's amount settles the case: the rest is written off, once
    offers.settle_offers(session, sorted({booking.debtor_id for booking in bookings}))
    metrics.count_payment(METHOD, session, len(bookings))
    return ids


def write(
    connection: Connection, bookings: Sequence[Booking], variants: dict[int, str | None]
) -> list[int]:
    """The rows of `book` without settling instalments: the payments, their `paid` events and
    allocations. Touches nothing but `connection` (the importer calls it from its writer
    thread). Returns the payment ids in the bookings' order."""
    if not bookings:
        return []
    now = utcnow()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        return _write_on_server(connection, bookings, variants, now)
    payments = [
        (b.campaign_id, b.debtor_id, PROVIDER, b.provider_ref, b.amount_minor, b.currency,
         "succeeded", now, now, "payment", METHOD, b.payer_iban, b.received_on)
        for b in bookings
    ]  # fmt: skip
    ids = insert_rows(connection, Payment.__table__, PAYMENT, payments)
    events = [
        (f"paid:{PROVIDER}:{b.provider_ref}", b.campaign_id, b.debtor_id, "paid", None,
         variants.get(b.debtor_id), "human", now,
         {"amount": str(from_minor(b.amount_minor, b.currency)), "currency": b.currency,
          "provider": PROVIDER, "method": METHOD})
        for b in bookings
    ]  # fmt: skip
    insert_rows(connection, Event.__table__, EVENT, events, ids=False)
    allocations = [
        (b.entry_id, b.seq, b.campaign_id, b.debtor_id, b.amount_minor, payment_id)
        for b, payment_id in zip(bookings, ids, strict=True)
    ]
    insert_rows(connection, BankAllocation.__table__, ALLOCATION, allocations, ids=False)
    links = [
        (payment_id, b.item_id, b.amount_minor)
        for b, payment_id in zip(bookings, ids, strict=True)
        if b.item_id is not None
    ]
    if links:
        insert_rows(connection, PaymentItem.__table__, LINK, links, ids=False)
    return ids


_ON_SERVER = """
WITH b AS (
    SELECT b.*, nextval(pg_get_serial_sequence('payment', 'id')) AS payment_id
    FROM unnest(
        %(entry)s::text::bigint[], %(seq)s::text::int[], %(debtor)s::text::bigint[],
        %(campaign)s::text::bigint[],
        %(amount)s::text::bigint[], %(currency)s::text::text[], %(iban)s::text::text[],
        %(day)s::text::date[],
        %(ref)s::text::text[], %(variant)s::text::text[], %(shown)s::text::text[],
        %(item)s::text::bigint[]
    ) WITH ORDINALITY AS b (entry_id, seq, debtor_id, campaign_id, amount_minor, currency,
                            payer_iban, received_on, ref, variant, shown, item, n)
), p AS (
    INSERT INTO payment (id, campaign_id, debtor_id, provider, provider_ref, amount_minor,
                         currency, status, created_at, updated_at, kind, method, payer_iban,
                         received_on)
    SELECT payment_id, campaign_id, debtor_id, %(provider)s, ref, amount_minor, currency,
           'succeeded', %(now)s, %(now)s, 'payment', %(method)s, payer_iban, received_on
    FROM b
), e AS (
    INSERT INTO event (idempotency_key, campaign_id, debtor_id, type, channel, variant, agent,
                       occurred_at, data)
    SELECT 'paid:' || %(provider)s || ':' || ref, campaign_id, debtor_id, 'paid', NULL, variant,
           'human', %(now)s,
           json_build_object('amount', shown, 'currency', currency, 'provider', %(provider)s,
                             'method', %(method)s)
    FROM b
), a AS (
    INSERT INTO bank_allocation (entry_id, seq, campaign_id, debtor_id, amount_minor, payment_id)
    SELECT entry_id, seq, campaign_id, debtor_id, amount_minor, payment_id FROM b
), i AS (
    INSERT INTO payment_item (payment_id, item_id, amount_minor)
    SELECT payment_id, item, amount_minor FROM b WHERE item IS NOT NULL
)
SELECT payment_id FROM b ORDER BY n
"""
"""The payments, their `paid` events and allocations in one statement on PostgreSQL: the
bookings go over as twelve arrays, and the server makes the three rows of each (four when
the entry named an item: its link; the payment's id drawn from its own sequence) instead of
Python formatting them for three COPY streams."""


def _write_on_server(
    connection: Connection, bookings: Sequence[Booking], variants, now
) -> list[int]:
    return write_arrays(connection, arrays(bookings, variants, now))


def arrays(bookings: Sequence[Booking], variants: dict[int, str | None], now=None) -> dict:
    """The bookings as the columns `write_arrays` sends (Python's part of the work, which the
    importer does while the server writes the chunk before)."""
    columns = {
        "entry": [b.entry_id for b in bookings],
        "seq": [b.seq for b in bookings],
        "debtor": [b.debtor_id for b in bookings],
        "campaign": [b.campaign_id for b in bookings],
        "amount": [b.amount_minor for b in bookings],
        "currency": [b.currency for b in bookings],
        "iban": [b.payer_iban for b in bookings],
        "day": [b.received_on for b in bookings],
        "ref": [b.provider_ref for b in bookings],
        "variant": [variants.get(b.debtor_id) for b in bookings],
        "shown": [str(from_minor(b.amount_minor, b.currency)) for b in bookings],
        "item": [b.item_id for b in bookings],
    }
    return {
        "count": len(bookings),
        **{name: array_literal(values) for name, values in columns.items()},
        "provider": PROVIDER,
        "method": METHOD,
        "now": now or utcnow(),
    }


def write_arrays(connection: Connection, columns: dict) -> list[int]:
    """Send the columns of `arrays` to PostgreSQL (psycopg): the payment ids in order."""
    if not columns["count"]:
        return []
    cursor = connection.connection.driver_connection.cursor()
    try:
        # one big statement over arrays: compiling it to machine code costs more than it saves
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_ON_SERVER, columns)
        return [row[0] for row in cursor.fetchall()]
    finally:
        cursor.close()


def settle_instalments(
    session: Session, bookings: Sequence[Booking], planned: set[int] | None
) -> None:
    """Mark the instalments of open plans that the transfers cover as paid, oldest first.

    A transfer pays whole instalments in order while it covers them (a part of one stays
    due); when the case is paid in full, every instalment left is paid and the plan completed.
    So `kindly payments collect` never charges a card for money that came by transfer.
    """
    amounts: dict[int, int] = {}
    for b in bookings:
        if planned is None or b.debtor_id in planned:
            amounts[b.debtor_id] = amounts.get(b.debtor_id, 0) + b.amount_minor
    if not amounts:
        return
    table = Plan.__table__
    for condition in among(session.connection(), table.c.debtor_id, list(amounts)):
        plans = session.scalars(select(Plan).where(condition, Plan.status.in_(OPEN))).all()
        for plan in plans:
            left = amounts.get(plan.debtor_id, 0)
            amounts[plan.debtor_id] = 0  # one open plan per debtor takes the money
            due = [i for i in plan.instalments if i.status in ("due", "failed")]
            debtor = session.get(Debtor, plan.debtor_id)
            settled = debtor is not None and balance.balance_minor(session, debtor) == 0
            for instalment in due:
                if not settled and left < instalment.amount_minor:
                    break
                left -= instalment.amount_minor
                instalment.status, instalment.retry_on = "paid", None
            if any(i.status == "paid" for i in plan.instalments) and plan.status == "agreed":
                plan.status = "active"
            if all(i.status == "paid" for i in plan.instalments):
                plan.status, plan.ended_at = "completed", utcnow()
    session.flush()


def reverse(session: Session, payment: Payment, ref: str, amount_minor: int) -> Payment:
    """Take a returned transfer's money back out: a negative `return` row keyed by `ref`."""
    amount = min(amount_minor, payment.amount_minor)
    return record_reversal(session, payment, kind="return", ref=ref, amount_minor=amount,
                           currency=payment.currency, status="succeeded")  # fmt: skip
