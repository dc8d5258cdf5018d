"""Changes to a user that end their dashboard sessions: sign-out, password, role, disabling.

A dashboard session is a signed cookie holding the user's `session_version` from sign-in;
web.admin accepts it only while the number is unchanged, so adding one here ends every
session the user has, on every device, at its next request.
"""

from __future__ import annotations

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from kindly.accounts.models import ROLES, User
from kindly.accounts.users import MIN_PASSWORD, UserError, _hasher


def end_sessions(session: Session, user: User) -> int:
    """Invalidate every session of the user; returns the new version."""
    # in SQL, so two sign-outs at once both count
    user.session_version = User.session_version + 1
    session.flush()
    session.refresh(user, ["session_version"])
    return user.session_version


def password_matches(user: User, password: str) -> bool:
    """Whether this is the user's current password."""
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def set_password(session: Session, user: User, password: str) -> None:
    """Give the user a new password and end their sessions."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    user.password_hash = _hasher.hash(password)
    end_sessions(session, user)


def set_role(session: Session, user: User, role: str) -> None:
    """Give the user another role and end their sessions (pages show what the role may do)."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if role != user.role:
        user.role = role
        end_sessions(session, user)


def set_active(session: Session, user: User, active: bool) -> None:
    """Enable or disable the user; disabling ends their sessions."""
    user.active = active
    if not active:
        end_sessions(session, user)
