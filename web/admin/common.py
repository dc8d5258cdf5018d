"""What every dashboard page shares: the blueprint, the signed-in user and its session,
the role check, error pages and template filters."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, session
from sqlalchemy.orm import Session

from kindly.accounts.models import User
from kindly.accounts.users import can
from kindly.money import format_minor
from web.context import context

bp = Blueprint("admin", __name__, url_prefix="/admin")

IDLE_TIMEOUT = 8 * 3600
"""Seconds without a request after which the dashboard asks to sign in again."""

ABSOLUTE_LIFETIME = 12 * 3600
"""Seconds after sign-in when the session ends however busy it is (a stolen cookie dies)."""

PUBLIC_ENDPOINTS = {"admin.login"}


def start_session(user: User) -> None:
    """A new cookie for the user: nothing carried over, valid for this session version."""
    session.clear()
    now = int(time.time())
    session.update(user_id=user.id, version=user.session_version, since=now, seen=now)


def current_user(session_db: Session) -> User | None:
    """The signed-in user, loaded again on each request so a disabled user is out at once.

    The cookie is signed but cannot be recalled, so it counts only while its session version
    is the user's (kindly.accounts.lifecycle) and its sign-in and last request are recent enough.
    """
    user_id = session.get("user_id")
    if not user_id:
        return None
    now = time.time()
    if (
        now - session.get("since", 0) > ABSOLUTE_LIFETIME
        or now - session.get("seen", 0) > IDLE_TIMEOUT
    ):
        return None
    user = session_db.get(User, user_id)
    if user is None or not user.active or session.get("version") != user.session_version:
        return None
    return user


@bp.before_request
def _require_sign_in():
    """Nobody signed out sees anything but the sign-in page."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint == "admin.static":
        return None
    with context().db.session() as db:
        user = current_user(db)
        if user is None:
            session.clear()  # a dead cookie is not sent again
            return redirect(f"/admin/login?next={request.path}")
        db.expunge(user)
    g.user = user
    session["seen"] = int(time.time())
    return None


@bp.after_request
def _no_cache(response):
    """Dashboard pages carry numbers and names: never cached by the browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    return response


def requires(action: str) -> Callable:
    """Allow the view only to roles that may do `action` ('manage' or 'admin')."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            if not can(g.user, action):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


@bp.errorhandler(403)
def _forbidden(_exc):
    return render_template("admin/message.html", title="Not allowed",
                           message="Your role may look but not change this."), 403  # fmt: skip


@bp.errorhandler(413)
def _too_large(_exc):
    return render_template("admin/message.html", title="File too large",
                           message="A portfolio file may have at most 32 MiB; other forms "
                                   "at most 1 MiB."), 413  # fmt: skip


@bp.errorhandler(404)
def _not_found(_exc):
    return render_template("admin/message.html", title="Not found",
                           message="There is nothing at this address."), 404  # fmt: skip


@bp.app_template_filter("admin_money")
def money_filter(minor: int | None, currency: str) -> str:
    """Minor units as a readable amount (en-GB conventions, currency code kept)."""
    return format_minor(int(minor or 0), currency, "en-GB")


@bp.app_template_filter("admin_pct")
def pct_filter(value: float | None) -> str:
    """A share as a percentage with one decimal, or an en dash when undefined."""
    return "–" if value is None else f"{value * 100:.1f} %"


@bp.context_processor
def _inject() -> dict[str, Any]:
    user = g.get("user")
    return {"user": user, "can": (lambda action: user is not None and can(user, action))}
