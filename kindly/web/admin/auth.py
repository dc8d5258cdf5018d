"""Signing in and out of the dashboard."""

from __future__ import annotations

import time

from flask import redirect, render_template, request, session

from kindly.core import audit
from kindly.core.users import TooManyAttempts, authenticate
from kindly.web.admin import bp, context


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard; never another site."""
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return "/admin/"


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; rate-limited per address and per IP."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("admin/login.html", next=target, error=None)
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    with context().db.session() as db:
        try:
            user = authenticate(db, email, password, request.remote_addr or "-")
        except TooManyAttempts as exc:
            return render_template("admin/login.html", next=target, error=str(exc)), 429
        if user is None:
            error = "That e-mail address and password do not match."
            return render_template("admin/login.html", next=target, error=error), 401
        audit.record(db, user, "sign_in", via="web")
        user_id = user.id
    session.clear()  # a new session after sign-in: nothing carried over from before
    session["user_id"] = user_id
    session["seen"] = int(time.time())
    return redirect(target, code=303)


@bp.post("/logout")
def logout():
    """Sign out (a POST with the CSRF token, so a link elsewhere cannot sign you out)."""
    session.clear()
    return redirect("/admin/login", code=303)
