"""How often someone may guess a dashboard password, without letting a stranger lock a user out.

Three rules, all counting only failed attempts (kept in `login_attempt`):

- one address, one account: 5 failures in 15 minutes lock that pair for the rest of the window;
- one address, any account: 20 failures in 15 minutes lock that address;
- one account, every address: from the 5th failure on, an address that has never signed in to
  the account must wait 1, 2, 4 … (at most 30) seconds after the account's last failure.

A stranger guessing from other addresses can therefore only slow down a new address for
seconds, never the address the user signs in from; the slow-down still caps distributed
guessing at about two attempts a minute per account.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.accounts.models import LoginAttempt
from kindly.errors import KindlyError
from kindly.infra.db import as_utc

MAX_FAILURES = 5
"""Failed sign-ins for one account from one address (or from one address, times four)."""

FAILURE_WINDOW = dt.timedelta(minutes=15)
"""How long failed sign-ins count."""

ACCOUNT_FAILURES = 5
"""Failures of one account, from anywhere, before new addresses must wait between attempts."""

MAX_BACKOFF = 30
"""Seconds, at most, a new address waits after the account's last failure."""

KNOWN_FOR = dt.timedelta(days=30)
"""An address that signed in to the account this recently skips the account's slow-down."""


class TooManyAttempts(KindlyError):
    """Sign-in is refused for a while after repeated failures."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def check(session: Session, email: str, ip: str, now: dt.datetime) -> None:
    """Raise TooManyAttempts if this address may not try this account now."""
    since = now - FAILURE_WINDOW
    failed = (LoginAttempt.success.is_(False), LoginAttempt.at >= since)
    pair = _count(session, LoginAttempt.email == email, LoginAttempt.ip == ip, *failed)
    address = _count(session, LoginAttempt.ip == ip, *failed)
    if pair >= MAX_FAILURES or address >= 4 * MAX_FAILURES:
        raise TooManyAttempts("too many failed sign-ins; try again in 15 minutes", 900)
    if _known(session, email, ip, now):
        return
    count, last = session.execute(
        select(func.count(LoginAttempt.id), func.max(LoginAttempt.at)).where(
            LoginAttempt.email == email, *failed
        )
    ).one()
    if count < ACCOUNT_FAILURES or last is None:
        return
    wait = min(2 ** (count - ACCOUNT_FAILURES), MAX_BACKOFF)
    left = math.ceil(wait - (now - as_utc(last)).total_seconds())
    if left > 0:
        raise TooManyAttempts(
            f"too many failed sign-ins for this account; try again in {left} seconds", left
        )


def _count(session: Session, *where) -> int:
    return int(session.scalar(select(func.count(LoginAttempt.id)).where(*where)) or 0)


def _known(session: Session, email: str, ip: str, now: dt.datetime) -> bool:
    """Whether the account signed in successfully from this address lately."""
    return bool(
        _count(
            session,
            LoginAttempt.email == email,
            LoginAttempt.ip == ip,
            LoginAttempt.success.is_(True),
            LoginAttempt.at >= now - KNOWN_FOR,
        )
    )
