"""The microsite's identity check and link expiry, per campaign settings."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.infra import metrics
from kindly.infra.db import utcnow
from kindly.site.models import IdentityCheck
from kindly.tracking import events

METHODS = ("none", "birth_date", "postal_code")
MAX_FAILURES = 5
"""Wrong answers in a row that lock the link."""
LOCK_STEPS = (
    dt.timedelta(minutes=15),
    dt.timedelta(hours=1),
    dt.timedelta(hours=4),
    dt.timedelta(hours=24),
)
"""How long the first, second, third and fourth lock last."""
MAX_LOCKS = len(LOCK_STEPS) + 1
"""The lock after the last step lasts until a new link is issued (kindly link new)."""
DEFAULT_LINK_DAYS = 90
DEFAULT_PROMISE_DAYS = 30


def _segment_check(debtor: Debtor) -> str:
    """The identity check the rules' decision for this debtor asks for ("none": none)."""
    from sqlalchemy.orm import object_session

    from kindly.rules.store import decision_for

    session = object_session(debtor)
    decision = decision_for(session, debtor) if session is not None else None
    return (decision.treatment or {}).get("identity_check", "none") if decision else "none"


def method(campaign: Campaign, debtor: Debtor, *, treatment: dict | None = None,
           decided: bool = False) -> str:  # fmt: skip
    """The check this debtor's link asks for; none when the debtor lacks the answer.

    The campaign sets the floor; a segment's rules may ask for a check where the campaign
    has none, but never remove the campaign's. With `decided`, `treatment` is the newest
    decision's (None: no decision), already read with the debtor (one query for a cold hit).
    """
    chosen = (campaign.settings or {}).get("identity_check", "none")
    if chosen == "none" and decided:
        chosen = (treatment or {}).get("identity_check", "none")
    elif chosen == "none":
        chosen = _segment_check(debtor)
    if chosen == "birth_date" and debtor.birth_date is None:
        return "none"
    if chosen == "postal_code" and not debtor.postal_code:
        return "none"
    return chosen if chosen in METHODS else "none"


def link_days(campaign: Campaign) -> int:
    """How many days a link lives after it was issued."""
    return int((campaign.settings or {}).get("link_days", DEFAULT_LINK_DAYS))


def promise_days(campaign: Campaign) -> int:
    """How far ahead a debtor may promise to pay."""
    return int((campaign.settings or {}).get("promise_max_days", DEFAULT_PROMISE_DAYS))


def expires_at(campaign: Campaign, debtor: Debtor) -> dt.datetime:
    """When the debtor's link stops working: its campaign's lifetime after it was issued."""
    issued = debtor.created_at
    if issued.tzinfo is None:  # SQLite hands back naive datetimes
        issued = issued.replace(tzinfo=dt.UTC)
    return issued + dt.timedelta(days=link_days(campaign))


def expired(campaign: Campaign, debtor: Debtor, now: dt.datetime | None = None) -> bool:
    """Whether the debtor's link is past its campaign's lifetime."""
    return (now or utcnow()) > expires_at(campaign, debtor)


def validate_site_settings(settings: dict) -> list[str]:
    """Problems with the microsite's campaign settings, each a sentence."""
    problems = []
    if settings.get("identity_check", "none") not in METHODS:
        problems.append(f"identity_check must be one of {', '.join(METHODS)}")
    limits = (("link_days", 1, 3650), ("promise_max_days", 1, 365), ("retention_days", 1, 3650))
    for key, low, high in limits:
        if key in settings:
            value = settings[key]
            if not isinstance(value, int) or not low <= value <= high:
                problems.append(f"{key} must be a whole number from {low} to {high}")
    return problems


@dataclass(frozen=True)
class Attempt:
    """What one answer led to; `refused`: not even compared, the link being locked."""

    passed: bool
    locked_until: dt.datetime | None
    tries_left: int
    refused: bool = False
    sealed: bool = False


@dataclass(frozen=True)
class Lock:
    """A link's lock: until when, or `sealed` until a new link is issued."""

    until: dt.datetime | None
    sealed: bool


def _normalise_postal(text: str) -> str:
    return re.sub(r"[\s-]", "", text).upper()


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive datetimes
        return value.replace(tzinfo=dt.UTC)
    return value


def lock_duration(locks: int) -> dt.timedelta | None:
    """How long the link's n-th lock lasts; None: until a new link is issued."""
    return LOCK_STEPS[locks - 1] if locks <= len(LOCK_STEPS) else None


def lock(session: Session, debtor: Debtor, now: dt.datetime | None = None) -> Lock | None:
    """The link's lock, if it is locked now (read afresh, never from the session's cache)."""
    row = session.execute(
        select(IdentityCheck.locked_until, IdentityCheck.locks).where(
            IdentityCheck.debtor_id == debtor.id
        )
    ).first()
    if row is None:
        return None
    if row.locks >= MAX_LOCKS:
        return Lock(None, True)
    until = _aware(row.locked_until)
    return Lock(until, False) if until is not None and until > (now or utcnow()) else None


def locked_until(
    session: Session, debtor: Debtor, now: dt.datetime | None = None
) -> dt.datetime | None:
    """When the link's lock ends, if it is locked now (a sealed link: the end of time)."""
    found = lock(session, debtor, now)
    if found is None:
        return None
    return found.until or dt.datetime.max.replace(tzinfo=dt.UTC)


def _ensure_row(session: Session, debtor_id: int) -> None:
    """Create the debtor's row unless it exists: one statement, so parallel first answers
    cannot collide on the primary key."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(IdentityCheck.__table__)
        .values(debtor_id=debtor_id, failures=0, total_failures=0, locks=0)
        .on_conflict_do_nothing(index_elements=["debtor_id"])
    )


def _reserve(session: Session, debtor_id: int, now: dt.datetime) -> int | None:
    """Take one of the link's tries atomically: the try's number, or None while locked.

    The UPDATE holds the row until the caller commits, so parallel answers for one link
    are compared one after another, each seeing the count its predecessor left.
    """
    table = IdentityCheck.__table__
    return session.execute(
        update(table)
        .where(
            table.c.debtor_id == debtor_id,
            table.c.locks < MAX_LOCKS,
            table.c.failures < MAX_FAILURES,
            or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
        )
        .values(failures=table.c.failures + 1)
        .returning(table.c.failures)
    ).scalar_one_or_none()


def _compare(debtor: Debtor, kind: str, answer: str) -> bool:
    if kind == "birth_date":
        try:
            return dt.date.fromisoformat(answer.strip()) == debtor.birth_date
        except ValueError:
            return False
    return bool(answer.strip()) and _normalise_postal(answer) == _normalise_postal(
        debtor.postal_code or ""
    )


def check(
    session: Session,
    debtor: Debtor,
    kind: str,
    answer: str,
    *,
    agent: str = "human",
    now: dt.datetime | None = None,
) -> Attempt:
    """Compare one answer; five wrong ones in a row lock the link, each lock longer than the
    last (LOCK_STEPS), and the MAX_LOCKS-th until a new link is issued."""
    now = now or utcnow()
    _ensure_row(session, debtor.id)
    tried = _reserve(session, debtor.id, now)
    if tried is None:
        found = lock(session, debtor, now)
        until = found.until if found else None
        return Attempt(False, until, 0, refused=True, sealed=bool(found and found.sealed))
    table = IdentityCheck.__table__
    row = table.c.debtor_id == debtor.id
    if _compare(debtor, kind, answer):
        session.execute(update(table).where(row).values(failures=0))
        events.record(
            session, debtor, "verified", channel="web", agent=agent, data={"method": kind}
        )
        return Attempt(True, None, MAX_FAILURES)
    wrong = {"total_failures": table.c.total_failures + 1}
    metrics.count_identity_failure(locked=tried >= MAX_FAILURES)
    if tried < MAX_FAILURES:
        session.execute(update(table).where(row).values(**wrong))
        return Attempt(False, None, MAX_FAILURES - tried)
    locks = session.execute(
        update(table).where(row).values(**wrong, failures=0, locks=table.c.locks + 1)
        .returning(table.c.locks)
    ).scalar_one()  # fmt: skip
    duration = lock_duration(locks)
    until = now + duration if duration is not None else None
    session.execute(update(table).where(row).values(locked_until=until))
    return Attempt(False, until, 0, sealed=duration is None)


def forget(session: Session, debtor: Debtor) -> None:
    """Clear the link's tries and locks (a new link was issued)."""
    session.execute(delete(IdentityCheck).where(IdentityCheck.debtor_id == debtor.id))
