"""The campaign manager's dashboard under /admin: sign-in, campaigns, users, audit log.

Every page needs a signed-in user; the role decides what they may change
(viewer: read only, manager: campaigns, admin: users too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session
from sqlalchemy.orm import Session

from kindly.core.context import Context
from kindly.core.models_admin import User
from kindly.core.money import format_minor
from kindly.core.users import can

bp = Blueprint("admin", __name__, url_prefix="/admin")

IDLE_TIMEOUT = 8 * 3600
"""Seconds without a request after which the dashboard asks to sign in again."""

UPLOAD_LIMIT = 32 * 1024 * 1024
"""Bytes a portfolio upload may have (the rest of the app keeps its 1 MiB limit)."""

PUBLIC_ENDPOINTS = {"admin.login"}


def context() -> Context:
    """The app's long-lived objects."""
    return current_app.extensions["kindly"]


def current_user(session_db: Session) -> User | None:
    """The signed-in user, loaded again on each request so a disabled user is out at once."""
    user_id = session.get("user_id")
    if not user_id:
        return None
    user = session_db.get(User, user_id)
    if user is None or not user.active:
        return None
    return user


@bp.before_request
def _require_sign_in():
    """Nobody signed out sees anything but the sign-in page."""
    if request.endpoint in ("admin.campaign_new", "admin.campaign_upload"):
        request.max_content_length = UPLOAD_LIMIT
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint == "admin.static":
        return None
    seen = session.get("seen", 0)
    if session.get("user_id") and time.time() - seen > IDLE_TIMEOUT:
        session.clear()
    with context().db.session() as db:
        user = current_user(db)
        if user is None:
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


from kindly.web.admin import auth, campaigns, debtors, people, rules, settings  # noqa: E402, F401
