"""Changes to a user that end their dashboard sessions: sign-out, password, role, disabling.

A dashboard session is a signed cookie holding the user's `session_version` from sign-in;
web.admin accepts it only while the number is unchanged, so adding one here ends every
session the user has, on every device, at its next request.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts.models import User
from kindly.accounts.scopes import Scope, stored
from kindly.accounts.users import check_role, create_user, normal_email, password_hash


def end_sessions(session: Session, user: User) -> int:
    """Invalidate every session of the user; returns the new version."""
    # in SQL, so two sign-outs at once both count
    user.session_version = User.session_version + 1
    session.flush()
    session.refresh(user, ["session_version"])
    return user.session_version


def set_password(session: Session, user: User, password: str) -> None:
    """Give the user a new password and end their sessions."""
    user.password_hash = password_hash(password)
    end_sessions(session, user)


def set_role(session: Session, user: User, role: str) -> None:
    """Give the user another role and end their sessions (pages show what the role may do)."""
    check_role(role)
    if role != user.role:
        user.role = role
        end_sessions(session, user)


def set_active(session: Session, user: User, active: bool) -> None:
    """Enable or disable the user; disabling ends their sessions."""
    user.active = active
    if not active:
        end_sessions(session, user)


def fresh_password(session: Session, email: str, role: str, scope: Scope | None = None) -> str:
    """A new random password for the user `email` (created with `role` and `scope` when new,
    or given them again): shown once to whoever asked; the previous password stops working
    and the user's sessions end. Never a fixed, known password."""
    password = secrets.token_urlsafe(15)
    user = session.scalar(select(User).where(User.email == normal_email(email)))
    if user is None:
        create_user(session, email, password, role, scope)
        return password
    set_role(session, user, role)
    user.scope = stored(scope)
    user.active = True
    set_password(session, user, password)
    return password
