"""The creditors in the dashboard: each creditor the campaigns name, its profile and what it
still lacks; a manager edits a profile (every problem listed, nothing saved until all are fixed).

A user limited to some creditors or campaigns sees the creditors their campaigns name, and
changes only those no campaign out of their reach names (kindly.creditors.service).
"""

from __future__ import annotations

from urllib.parse import quote

from flask import abort, g, redirect, render_template, request
from sqlalchemy import select

from kindly.accounts import audit
from kindly.accounts.scopes import access_of, visible
from kindly.campaigns.logo import MAX_BYTES
from kindly.campaigns.models import Campaign
from kindly.creditors.service import (
    FIELDS,
    CreditorError,
    as_dict,
    get_creditor,
    list_creditors,
    may_change,
    may_see,
    names_in_reach,
    names_used,
    prepare_logo,
    set_creditor,
)
from kindly.launch import creditor_gaps
from kindly.payments.iban import format_iban
from kindly.site import artifacts
from web.admin.common import bp, requires
from web.context import context

TEXT_FIELDS = tuple(key for key in FIELDS if key != "logo")
"""What the form edits as text; the logo is uploaded."""


@bp.get("/creditors")
def creditors():
    """Every creditor in reach: its profile's contact and account, and the gaps per campaign."""
    access = access_of(g.user)
    with context().db.session() as db:
        rows = {row.name: row for row in list_creditors(db, access)}
        names = sorted(rows.keys() | (names_in_reach(db, access) if access else names_used(db)))
        gaps: dict[str, dict[str, None]] = {name: {} for name in names}  # in the check's order
        for campaign in db.scalars(visible(select(Campaign), access).order_by(Campaign.slug)):
            for gap in creditor_gaps(db, campaign):
                name = gap.template.removeprefix("creditor ")
                gaps.setdefault(name, {})[gap.missing.split(" (")[0]] = None
        listed = [
            {"name": name, "row": as_dict(rows[name]) if name in rows else None,
             "missing": list(gaps.get(name, ())),
             "iban": format_iban(rows[name].iban) if name in rows and rows[name].iban else ""}
            for name in names
        ]  # fmt: skip
    return render_template("admin/creditors.html", creditors=listed)


def _name() -> str:
    name = (request.values.get("name") or "").strip()
    if not name:
        abort(404)
    return name


@bp.route("/creditors/edit", methods=["GET", "POST"])
@requires("manage")
def creditor_edit():
    """GET shows the profile's form (?name=…); POST checks every field and saves only when all
    are right."""
    name = _name()
    access = access_of(g.user)
    ctx = context()
    with ctx.db.session() as db:
        if not may_see(db, access, name):
            abort(404)
        if not may_change(db, access, name):
            abort(403)
        row = get_creditor(db, name)
        current = as_dict(row) if row else {"name": name, **dict.fromkeys(FIELDS, "")}
        current["address"] = "\n".join(current["address"] or [])
        if request.method == "GET":
            return render_template("admin/creditor.html", name=name, form=current,
                                   problems=[], saved=request.args.get("saved"),
                                   has_logo=bool(row and row.logo))  # fmt: skip
        form = {key: request.form.get(key, "") for key in TEXT_FIELDS}
        changes: dict[str, str] = dict(form)
        problems: list[str] = []
        png = None
        upload = request.files.get("logo_file")
        try:
            if upload is not None and upload.filename:
                changes["logo"], png = prepare_logo(upload.stream.read(MAX_BYTES + 1))
            elif request.form.get("logo_remove"):
                changes["logo"] = ""
            row = set_creditor(db, name, changes)
            artifacts.mark_creditor_stale(db, row.name)  # pages, letters, videos naming it
        except CreditorError as exc:
            problems = exc.errors
        if problems:
            db.rollback()
            return render_template("admin/creditor.html", name=name, form={**current, **form},
                                   problems=problems, saved=None,
                                   has_logo=bool(current.get("logo"))), 422  # fmt: skip
        if png is not None:
            ctx.storage.put(changes["logo"], png, "image/png")
        changed = sorted(key for key in changes if changes[key] != current.get(key))
        audit.record(db, g.user, "creditor.set", via="web", creditor=row.name, fields=changed)
    return redirect(f"/admin/creditors/edit?name={quote(name, safe='')}&saved=1", code=303)
