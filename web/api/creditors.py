"""/api/v1 creditors: the profiles of the creditors a key's campaigns name (list, read, set)."""

from __future__ import annotations

from flask import g, request

from kindly.accounts import audit
from kindly.creditors.service import (
    CreditorError,
    as_dict,
    get_creditor,
    list_creditors,
    may_change,
    may_see,
    set_creditor,
)
from kindly.site import artifacts
from web.api.common import authenticated, bp, problem
from web.context import context


@bp.get("/creditors")
@authenticated()
def creditors():
    """Every creditor profile the key reaches, by name."""
    with context().db.session() as db:
        return {"creditors": [as_dict(row) for row in list_creditors(db, g.api_access)]}


@bp.get("/creditors/<path:name>")
@authenticated()
def creditor(name: str):
    """One profile; a creditor out of the key's reach is answered like one that does not exist."""
    with context().db.session() as db:
        row = get_creditor(db, name) if may_see(db, g.api_access, name) else None
        if row is None:
            return problem(404, f"no creditor {name!r}")
        return as_dict(row)


@bp.put("/creditors/<path:name>")
@authenticated("manage")
def creditor_set(name: str):
    """Create or change a profile: the fields given are set, the others keep their value."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(400, "send a JSON object of profile fields")
    body.pop("name", None)  # the name is the URL's
    with context().db.session() as db:
        if not may_see(db, g.api_access, name):
            return problem(404, f"no creditor {name!r}")
        if not may_change(db, g.api_access, name):
            return problem(403, "campaigns out of this key's reach name this creditor too")
        existed = get_creditor(db, name) is not None
        try:
            row = set_creditor(db, name, body)
            artifacts.mark_creditor_stale(db, row.name)  # pages, letters, videos naming it
        except CreditorError as exc:
            db.rollback()
            return problem(422, "not saved: the profile has problems", problems=exc.errors)
        audit.record(db, g.api_user, "creditor.set", via="api", creditor=row.name,
                     fields=sorted(body))  # fmt: skip
        answer = as_dict(row)
    return answer, 200 if existed else 201
