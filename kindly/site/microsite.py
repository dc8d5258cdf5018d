"""What a microsite view must read fresh on every open, in one database round trip.

The page itself (the debtor's view, texts and stored HTML) changes rarely; the front keeps it
per process and rebuilds it when `LiveState.stamp` differs from the one it was built for. The
stamp holds everything the page is made of (the debtor row's `updated_at`, the campaign, the
rules' decision, the stored artifacts and the page's stale mark, what was paid) and what the
case's state is derived from (the next instalment, the latest plan's status, the latest event
that changes a case, the day), so a payment, an import, a change marked stale
(kindly.site.artifacts.mark_stale), a dispute, a promise or a new rendering shows on the very
next open. What counting needs (the last send) is read in the same statement.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, bindparam, cast, exists, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

from kindly.campaigns.models import Campaign, Debtor
from kindly.infra.db import Database
from kindly.payments.models import Instalment, Payment, Plan
from kindly.payments.plans import OPEN
from kindly.rules.models import Decision
from kindly.site.models import Artifact
from kindly.tracking.models import Event

DUE = ("due", "failed")
"""Instalment states still to be paid (as `plans.next_instalment` reads them)."""
CASE_EVENTS = (
    "promise", "plan_requested", "plan_agreed", "hold", "hold_released", "opted_out", "opted_in",
    "written_off", "survey",
)  # fmt: skip
"""Events that change a case's state (kindly.cases): the latest one's id is in the stamp, so
a dispute, a promise or a plan asked for rebuilds the page's first screen."""


@dataclass(frozen=True)
class LiveState:
    """The debtor's state as of this request."""

    debtor_id: int
    stamp: tuple[Any, ...]
    paid_minor: int
    instalment: tuple[int, dt.date] | None
    sent_at: dt.datetime | None
    today: dt.date  # the day the case's state is judged on
    transfer: tuple[int, dt.date] | None = None  # the latest payment, when a bank transfer


@lru_cache(maxsize=1)
def _statement() -> Select:
    debtor, campaign = Debtor.__table__, Campaign.__table__
    paid = (
        select(func.coalesce(func.sum(Payment.amount_minor), 0))
        .where(
            Payment.debtor_id == debtor.c.id,
            Payment.status == "succeeded",
            Payment.currency == debtor.c.currency,
        )
        .scalar_subquery()
    )
    plan = (
        select(Plan.id)
        .where(Plan.debtor_id == debtor.c.id, or_(*(Plan.status == status for status in OPEN)))
        .order_by(Plan.id.desc())
        .limit(1)
        .correlate(debtor)
        .scalar_subquery()
    )

    def instalment(column):
        return (
            select(column)
            .where(
                Instalment.plan_id == plan, or_(*(Instalment.status == status for status in DUE))
            )
            .order_by(Instalment.seq)
            .limit(1)
            .correlate(debtor)
            .scalar_subquery()
        )

    def latest(column, type_: str):
        return (
            select(column)
            .where(Event.debtor_id == debtor.c.id, Event.type == type_)
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    def last_payment(column):
        return (
            select(column)
            .where(
                Payment.debtor_id == debtor.c.id,
                Payment.status == "succeeded",
                Payment.kind == "payment",
            )
            .order_by(Payment.id.desc())
            .limit(1)
            .correlate(debtor)
            .scalar_subquery()
        )

    def has(kind: str):
        return exists().where(Artifact.debtor_id == debtor.c.id, Artifact.kind == kind)

    decision = (
        select(Decision.id)
        .where(Decision.debtor_id == debtor.c.id)
        .order_by(Decision.rule_version.desc())
        .limit(1)
        .scalar_subquery()
    )
    case_event = (
        select(func.max(Event.id))
        # or_, not in_: an expanding IN cannot be compiled once for the raw cursor (_fetch)
        .where(Event.debtor_id == debtor.c.id, or_(*(Event.type == t for t in CASE_EVENTS)))
        .scalar_subquery()
    )
    plan_status = (  # the latest plan's, whatever it is: broken or completed changes the case
        select(Plan.status)
        .where(Plan.debtor_id == debtor.c.id)
        .order_by(Plan.id.desc())
        .limit(1)
        .correlate(debtor)
        .scalar_subquery()
    )

    def stored_site(column):
        return (
            select(column)
            .where(Artifact.debtor_id == debtor.c.id, Artifact.kind == "site")
            .scalar_subquery()
        )

    return (
        select(
            debtor.c.id,
            debtor.c.updated_at,
            campaign.c.id,
            campaign.c.name,
            campaign.c.default_locale,
            campaign.c.creditor,
            campaign.c.contract,
            campaign.c.brand_color,
            # compared, never read: as text, so the driver doesn't parse it on every view
            cast(campaign.c.settings, Text).label("settings"),
            decision.label("decision"),
            stored_site(Artifact.sha256).label("site"),
            stored_site(Artifact.stale_at).label("site_stale"),  # marked stale: built live
            has("video").label("video"),
            has("letter").label("letter"),
            paid.label("paid"),
            instalment(Instalment.amount_minor).label("instalment_minor"),
            instalment(Instalment.due_date).label("instalment_due"),
            latest(Event.occurred_at, "sent").label("sent_at"),
            case_event.label("case_event"),
            plan_status.label("plan_status"),
            last_payment(Payment.method).label("last_method"),
            last_payment(Payment.amount_minor).label("last_minor"),
            last_payment(Payment.received_on).label("last_on"),
        )
        .join(campaign, campaign.c.id == debtor.c.campaign_id)
        .where(debtor.c.token == bindparam("token"))
    )


def _fetch(connection: Connection, token: str):
    """The statement's one row (or None). With psycopg the statement, compiled once, goes
    straight to the driver's cursor: SQLAlchemy's result layer cost as much client time as
    everything else in the read. Driver errors are raised as SQLAlchemy's, marked when the
    connection was dropped, so callers can retry as with any other statement."""
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return connection.execute(_statement(), {"token": token}).one_or_none()
    sql, constants = _compiled(dialect)
    params = {**constants, "token": token}
    raw = connection.connection.dbapi_connection
    try:
        with raw.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    except dialect.loaded_dbapi.Error as exc:
        dropped = dialect.is_disconnect(exc, raw, None)
        if dropped:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=dropped
        ) from exc


_COMPILED: dict[type, tuple[str, dict[str, Any]]] = {}


def _compiled(dialect) -> tuple[str, dict[str, Any]]:
    """The statement's SQL for this dialect and its constant parameters, compiled once."""
    key = type(dialect)
    if key not in _COMPILED:
        compiled = _statement().compile(dialect=dialect)
        _COMPILED[key] = (str(compiled), dict(compiled.params))
    return _COMPILED[key]


def live_state(
    connection: Connection, token: str, today: dt.date | None = None
) -> LiveState | None:
    """The debtor's live state by token, or None for an unknown token (one statement). The
    stamp holds what the page is made of, the inputs of the case's state and `today` (a
    promise's day, a hold's end and a plan asked for pass with the date)."""
    row = _fetch(connection, token)
    if row is None:
        return None
    (debtor_id, *_, paid, instalment_minor, instalment_due, sent_at, case_event, plan_status) = row[
        :-3
    ]
    last_method, last_minor, last_on = row[-3:]
    if sent_at is not None and sent_at.tzinfo is None:  # SQLite hands back naive datetimes
        sent_at = sent_at.replace(tzinfo=dt.UTC)
    today = today or dt.date.today()
    return LiveState(
        debtor_id=debtor_id,
        stamp=(*row[:17], case_event, plan_status, today),
        paid_minor=int(paid or 0),
        instalment=(int(instalment_minor), instalment_due)
        if instalment_minor is not None
        else None,
        sent_at=sent_at,
        today=today,
        transfer=(int(last_minor), last_on) if last_method == "bank_transfer" and last_on else None,
    )


def read_live_state(db: Database, token: str) -> LiveState | None:
    """live_state on the database's read engine: autocommit (one read needs no transaction)
    and no ping first, so the view costs one round trip to the database."""
    return db.read(lambda connection: live_state(connection, token))
