"""The microsite's identity check and link expiry, per campaign settings."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from kindly.core import events
from kindly.core.models import Campaign, Debtor, utcnow
from kindly.core.models_site import IdentityCheck

METHODS = ("none", "birth_date", "postal_code")
MAX_FAILURES = 5
LOCK_MINUTES = 15
DEFAULT_LINK_DAYS = 90
DEFAULT_PROMISE_DAYS = 30


def _segment_check(debtor: Debtor) -> str:
    """The identity check the rules' decision for this debtor asks for ("none": none)."""
    from sqlalchemy.orm import object_session

    from kindly.core.rules import decision_for

    session = object_session(debtor)
    decision = decision_for(session, debtor) if session is not None else None
    return (decision.treatment or {}).get("identity_check", "none") if decision else "none"


def method(campaign: Campaign, debtor: Debtor) -> str:
    """The check this debtor's link asks for; none when the debtor lacks the answer.

    The campaign sets the floor; a segment's rules may ask for a check where the campaign
    has none, but never remove the campaign's.
    """
    chosen = (campaign.settings or {}).get("identity_check", "none")
    if chosen == "none":
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
    """What one answer led to."""

    passed: bool
    locked_until: dt.datetime | None
    tries_left: int


def _normalise_postal(text: str) -> str:
    return re.sub(r"[\s-]", "", text).upper()


def _state(session: Session, debtor: Debtor) -> IdentityCheck:
    state = session.get(IdentityCheck, debtor.id, with_for_update=True)
    if state is None:
        state = IdentityCheck(debtor_id=debtor.id, failures=0, total_failures=0, locks=0)
        session.add(state)
        session.flush()
    return state


def locked_until(
    session: Session, debtor: Debtor, now: dt.datetime | None = None
) -> dt.datetime | None:
    """When the link's lock ends, if it is locked now."""
    state = session.get(IdentityCheck, debtor.id)
    if state is None or state.locked_until is None:
        return None
    until = state.locked_until
    if until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    return until if until > (now or utcnow()) else None


def check(
    session: Session, debtor: Debtor, kind: str, answer: str, *, agent: str = "human"
) -> Attempt:
    """Compare one answer; five wrong ones lock the link for fifteen minutes."""
    now = utcnow()
    until = locked_until(session, debtor, now)
    if until is not None:
        return Attempt(False, until, 0)
    state = _state(session, debtor)
    if kind == "birth_date":
        try:
            passed = dt.date.fromisoformat(answer.strip()) == debtor.birth_date
        except ValueError:
            passed = False
    else:
        passed = bool(answer.strip()) and _normalise_postal(answer) == _normalise_postal(
            debtor.postal_code or ""
        )
    if passed:
        state.failures = 0
        state.locked_until = None
        events.record(
            session, debtor, "verified", channel="web", agent=agent, data={"method": kind}
        )
        return Attempt(True, None, MAX_FAILURES)
    state.failures += 1
    state.total_failures += 1
    if state.failures >= MAX_FAILURES:
        state.failures = 0
        state.locks += 1
        state.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
        return Attempt(False, state.locked_until, 0)
    return Attempt(False, None, MAX_FAILURES - state.failures)
