"""Users (admin only), each user's own API keys, and the audit log."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit
from kindly.accounts.lifecycle import set_active
from kindly.accounts.models import ROLES, ApiToken, AuditLog, User
from kindly.accounts.scopes import Scope, ScopeError, access_of, describe, make_scope, visible
from kindly.accounts.users import UserError, create_user, issue_token, revoke_token, set_scope
from kindly.campaigns.models import Campaign
from web.admin.common import bp, requires
from web.context import context


@bp.route("/users", methods=["GET", "POST"])
@requires("admin")
def users():
    """Every user and what they reach; an admin adds users here."""
    problem = None
    with context().db.session() as db:
        if request.method == "POST":
            try:
                form = request.form
                user = create_user(
                    db, form.get("email", ""), form.get("password", ""), form.get("role", ""),
                    _scope_from_form(db),
                )  # fmt: skip
                audit.record(db, g.user, "user.create", via="web", email=user.email,
                             role=user.role, scope=describe(user.scope))  # fmt: skip
            except (UserError, ScopeError) as exc:
                problem = str(exc)
        return _users_page(db, problem)


def _users_page(db: Session, problem: str | None):
    """The users page, with the problem of the form just sent (422) or none."""
    everyone = list(db.scalars(select(User).order_by(User.email)))
    page = render_template("admin/users.html", users=everyone, roles=ROLES, problem=problem,
                           describe=describe, **_choices(db))  # fmt: skip
    return page, (422 if problem else 200)


def _scope_from_form(db: Session) -> Scope | None:
    """The scope typed in a form: creditors one per line, campaigns chosen (none: all)."""
    if request.form.get("all") == "1":  # a multiple select is hard to empty by hand
        return None
    creditors = request.form.get("creditors", "").splitlines()
    return make_scope(db, creditors, request.form.getlist("campaigns"), access_of(g.user))


def _choices(db: Session) -> dict[str, list[str]]:
    """The campaigns and creditors the signed-in user may hand on to a user or a key."""
    query = visible(select(Campaign), access_of(g.user)).order_by(Campaign.slug)
    campaigns = list(db.scalars(query))
    creditors = sorted({c.creditor for c in campaigns if c.creditor})
    return {"campaign_choices": [c.slug for c in campaigns], "creditor_choices": creditors}


@bp.post("/users/<int:user_id>/scope")
@requires("admin")
def user_scope(user_id: int):
    """Limit a user to some creditors and campaigns, or give them all again."""
    with context().db.session() as db:
        user = db.get(User, user_id)
        if user is None:
            abort(404)
        before = describe(user.scope)
        try:
            set_scope(user, _scope_from_form(db))
        except (UserError, ScopeError) as exc:
            db.rollback()
            return _users_page(db, str(exc))
        audit.record(db, g.user, "user.scope", via="web", email=user.email, before=before,
                     after=describe(user.scope))  # fmt: skip
    return redirect("/admin/users", code=303)


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
    secret = problem = None
    with context().db.session() as db:
        if request.method == "POST":
            try:
                scope = _scope_from_form(db)
            except ScopeError as exc:
                problem = str(exc)
            else:
                token, secret = issue_token(db, g.user, request.form.get("name", "api"), scope)
                audit.record(db, g.user, "token.issue", via="web", token=token.prefix,
                             scope=describe(token.scope))  # fmt: skip
        mine = list(
            db.scalars(
                select(ApiToken).where(ApiToken.user_id == g.user.id).order_by(ApiToken.id.desc())
            )
        )
        page = render_template("admin/keys.html", tokens=mine, secret=secret, problem=problem,
                               describe=describe, **_choices(db))  # fmt: skip
        return page, (422 if problem else 200)


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
    access = access_of(g.user)
    with context().db.session() as db:
        slugs = dict(db.execute(visible(select(Campaign.id, Campaign.slug), access)).all())
        if access:  # a scoped manager sees only the entries of their campaigns
            entries = list(db.scalars(
                select(AuditLog).where(AuditLog.campaign_id.in_(list(slugs)))
                .order_by(AuditLog.id.desc()).limit(200)
            ))  # fmt: skip
        else:
            entries = audit.recent(db, limit=200)
    return render_template("admin/audit.html", entries=entries, slugs=slugs)
