"""Dashboard users: argon2id passwords, rate-limited sign-in, and per-user API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import throttle
from kindly.accounts.models import ROLES, ApiToken, LoginAttempt, User
from kindly.accounts.scopes import Scope, stored
from kindly.accounts.throttle import (  # noqa: F401 - callers import them from here
    FAILURE_WINDOW,
    MAX_FAILURES,
    TooManyAttempts,
)
from kindly.errors import KindlyError
from kindly.infra.db import utcnow

MIN_PASSWORD = 12
TOKEN_PREFIX = "kly_"  # noqa: S105 - a label, not a secret
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# argon2-cffi's defaults are argon2id (RFC 9106's low-memory profile).
_hasher = PasswordHasher()
# Verifying against this when the user does not exist costs the same time as a real check.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserError(KindlyError):
    """A user cannot be created or changed as asked."""


def normal_email(email: str) -> str:
    """The address as stored: trimmed and lower-case."""
    return email.strip().lower()


def password_hash(password: str) -> str:
    """An argon2id hash of a new password, or UserError when it is too short."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def check_role(role: str) -> None:
    """UserError unless `role` is one of ROLES."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")


def create_user(
    session: Session, email: str, password: str, role: str, scope: Scope | None = None
) -> User:
    """Add a user with an argon2id password hash, reaching every campaign or only `scope`."""
    email = normal_email(email)
    if not EMAIL.match(email):
        raise UserError(f"{email!r} is not an email address")
    check_role(role)
    hashed = password_hash(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError(f"a user {email} already exists")
    _check_scope(role, scope)
    user = User(email=email, password_hash=hashed, role=role, scope=stored(scope))
    session.add(user)
    session.flush()
    return user


def set_scope(user: User, scope: Scope | None) -> None:
    """Limit the user to `scope` (None: every campaign); their keys follow at once."""
    _check_scope(user.role, scope)
    user.scope = stored(scope)


def _check_scope(role: str, scope: Scope | None) -> None:
    # An admin manages users and webhooks for every campaign: a limit would be a pretence.
    if role == "admin" and scope is not None:
        raise UserError("an admin reaches every campaign; give a manager or viewer a scope")


def authenticate(
    session: Session, email: str, password: str, ip: str, now: dt.datetime | None = None
) -> User | None:
    """The user if the password is right; None if not; TooManyAttempts when locked.

    Every attempt is recorded; kindly.accounts.throttle decides from the failures alone whether
    this address may try this account now, so a success never counts against anyone.
    """
    now = now or utcnow()
    email = normal_email(email)[:320]
    ip = (ip or "-")[:64]
    throttle.check(session, email, ip, now)
    user = session.scalar(select(User).where(User.email == email))
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and user is not None and user.active
    session.add(LoginAttempt(email=email, ip=ip, success=ok, at=now))
    if not ok:
        return None
    assert user is not None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now
    return user


def issue_token(
    session: Session, user: User, name: str, scope: Scope | None = None
) -> tuple[ApiToken, str]:
    """A new API key for the user, optionally narrower than the user; shown once, never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id, name=name.strip()[:100] or "api", prefix=secret[:10],
        token_hash=_digest(secret), scope=stored(scope),
    )  # fmt: skip
    session.add(token)
    session.flush()
    return token, secret


def revoke_token(session: Session, token: ApiToken) -> None:
    """Revoke a key: it stops working at once."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()


def key_holder(session: Session, secret: str) -> tuple[User, ApiToken] | None:
    """The active user and this unrevoked key of theirs (for the key's scope), or None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    token.last_used_at = utcnow()
    return user, token


def _digest(secret: str) -> str:
    # The key has 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def can(user: User, action: str) -> bool:
    """Whether the user's role allows 'read', 'manage' (campaigns) or 'admin' (users)."""
    allowed = {"admin": {"read", "manage", "admin"}, "manager": {"read", "manage"}}
    return action == "read" or action in allowed.get(user.role, set())
