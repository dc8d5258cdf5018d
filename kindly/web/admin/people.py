"""Users (admin only), each user's own API keys, and the audit log."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request
from sqlalchemy import select

from kindly.core import audit
from kindly.core.accounts import set_active
from kindly.core.models import Campaign
from kindly.core.models_admin import ROLES, ApiToken, User
from kindly.core.users import UserError, create_user, issue_token, revoke_token
from kindly.web.admin import bp, context, requires


@bp.route("/users", methods=["GET", "POST"])
@requires("admin")
def users():
    """Every user; an admin adds users here."""
    problem = None
    with context().db.session() as db:
        if request.method == "POST":
            try:
                form = request.form
                user = create_user(
                    db, form.get("email", ""), form.get("password", ""), form.get("role", "")
                )
                audit.record(db, g.user, "user.create", via="web", email=user.email,
                             role=user.role)  # fmt: skip
            except UserError as exc:
                problem = str(exc)
        everyone = list(db.scalars(select(User).order_by(User.email)))
        return render_template("admin/users.html", users=everyone, roles=ROLES,
                               problem=problem), (422 if problem else 200)  # fmt: skip


@bp.post("/users/<int:user_id>/active")
@requires("admin")
def user_active(user_id: int):
    """Disable or enable a user (not yourself): a disabled user is signed out at once."""
    with context().db.session() as db:
        user = db.get(User, user_id)
        if user is None:
            abort(404)
        if user.id == g.user.id:
            abort(403)
        set_active(db, user, request.form.get("active") == "1")
        audit.record(db, g.user, "user.enable" if user.active else "user.disable", via="web",
                     email=user.email)  # fmt: skip
    return redirect("/admin/users", code=303)


@bp.route("/keys", methods=["GET", "POST"])
def keys():
    """The signed-in user's API keys; a new key is shown once, then only its prefix."""
    secret = None
    with context().db.session() as db:
        if request.method == "POST":
            token, secret = issue_token(db, g.user, request.form.get("name", "api"))
            audit.record(db, g.user, "token.issue", via="web", token=token.prefix)
        mine = list(
            db.scalars(
                select(ApiToken).where(ApiToken.user_id == g.user.id).order_by(ApiToken.id.desc())
            )
        )
        return render_template("admin/keys.html", tokens=mine, secret=secret)


@bp.post("/keys/<int:token_id>/revoke")
def key_revoke(token_id: int):
    """Revoke one of your keys (an admin may revoke anyone's)."""
    with context().db.session() as db:
        token = db.get(ApiToken, token_id)
        if token is None or (token.user_id != g.user.id and g.user.role != "admin"):
            abort(404)
        revoke_token(db, token)
        audit.record(db, g.user, "token.revoke", via="web", token=token.prefix)
    return redirect("/admin/keys", code=303)


@bp.get("/audit")
@requires("manage")
def audit_log():
    """The newest 200 entries of the audit log."""
    with context().db.session() as db:
        entries = audit.recent(db, limit=200)
        slugs = dict(db.execute(select(Campaign.id, Campaign.slug)).all())
    return render_template("admin/audit.html", entries=entries, slugs=slugs)
