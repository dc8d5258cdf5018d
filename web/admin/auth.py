"""Signing in and out of the dashboard."""

from __future__ import annotations

from flask import g, redirect, render_template, request, session

from kindly.accounts import audit
from kindly.accounts.lifecycle import end_sessions
from kindly.accounts.models import User
from kindly.accounts.users import TooManyAttempts, authenticate
from web.admin.common import bp, start_session
from web.context import context


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard; never another site."""
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return "/admin/"


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; rate-limited per address and per IP (kindly.accounts.throttle)."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("admin/login.html", next=target, error=None)
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    with context().db.session() as db:
        try:
            user = authenticate(db, email, password, request.remote_addr or "-")
        except TooManyAttempts as exc:
            page = render_template("admin/login.html", next=target, error=str(exc))
            return page, 429, {"Retry-After": str(exc.retry_after)}
        if user is None:
            error = "That e-mail address and password do not match."
            return render_template("admin/login.html", next=target, error=error), 401
        audit.record(db, user, "sign_in", via="web")
        start_session(user)
    return redirect(target, code=303)


@bp.post("/logout")
def logout():
    """Sign out (a POST with the CSRF token) everywhere: every cookie of the user stops working."""
    with context().db.session() as db:
        user = db.get(User, g.user.id)
        if user is not None:
            end_sessions(db, user)
    session.clear()
    return redirect("/admin/login", code=303)
