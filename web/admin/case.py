"""Case actions on a debtor's page: hold collection (until a day or until released), release
a hold with a note (releasing a dispute's hold resumes collection), write a note, and send
the link again. Managers only; every action is audited and kept on the case."""

from __future__ import annotations

import datetime as dt

from flask import g, redirect, render_template, request

from kindly.accounts import audit
from kindly.cases.holds import HoldError
from kindly.errors import ServiceUnavailable
from kindly.inbox import actions
from kindly.inbox.service import MAX_ID, InboxConflict, InboxError
from web import refpath
from web.admin.campaigns import find_campaign
from web.admin.common import bp, requires
from web.admin.debtors import find_debtor
from web.context import context

CASE = "/campaigns/<slug>/debtors/<reference>"


def _back(slug: str, reference: str, done: str):
    path = f"/admin/campaigns/{slug}/debtors/{refpath.segment(reference)}"
    return redirect(f"{path}?done={done}#case-actions", code=303)


def _refused(message: str, status: int = 409):
    return render_template("admin/message.html", title="Not done", message=message), status


@bp.post(f"{CASE}/hold")
@requires("manage")
def case_hold(slug: str, reference: str):
    """Hold collection: no reminder goes out until the day given (or until released)."""
    raw = request.form.get("until", "").strip()
    note = request.form.get("note", "")[:2000]
    with context().db.session() as db:
        campaign = find_campaign(db, slug)  # out of scope: 404 before the form is read
        debtor = find_debtor(db, campaign, reference)
        try:
            until = dt.date.fromisoformat(raw) if raw else None
        except ValueError:
            return _refused(f"the hold's end must be a date (YYYY-MM-DD), not {raw[:20]!r}", 400)
        try:
            placed = actions.hold(db, debtor, g.user.email, note, until)
        except (HoldError, InboxError) as exc:
            return _refused(str(exc), 400)
        audit.record(db, g.user, "case.hold", via="web", campaign_id=campaign.id,
                     reference=debtor.reference, hold=placed.id,
                     until=until.isoformat() if until else None)  # fmt: skip
        reference = debtor.reference
    return _back(slug, reference, "hold")


@bp.post(f"{CASE}/release")
@requires("manage")
def case_release(slug: str, reference: str):
    """Release a hold with the reason why; collection resumes unless another hold remains."""
    hold_id = request.form.get("hold", "")
    note = request.form.get("note", "")[:2000]
    with context().db.session() as db:
        campaign = find_campaign(db, slug)  # out of scope: 404 before the form is read
        debtor = find_debtor(db, campaign, reference)
        if not (hold_id.isdigit() and 0 < int(hold_id[:12]) <= MAX_ID):
            return _refused("choose the hold to release", 400)
        try:
            released = actions.release(db, debtor, int(hold_id), g.user.email, note)
        except (HoldError, InboxError) as exc:
            return _refused(str(exc), 400)
        audit.record(db, g.user, "case.release", via="web", campaign_id=campaign.id,
                     reference=debtor.reference, hold=released.id,
                     reason=released.reason)  # fmt: skip
        reference = debtor.reference
    return _back(slug, reference, "release")


@bp.post(f"{CASE}/note")
@requires("manage")
def case_note(slug: str, reference: str):
    """Keep a note on the case."""
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        debtor = find_debtor(db, campaign, reference)
        try:
            note = actions.add_note(db, debtor, g.user.email, request.form.get("body", ""))
        except InboxError as exc:
            return _refused(str(exc), 400)
        audit.record(db, g.user, "case.note", via="web", campaign_id=campaign.id,
                     reference=debtor.reference, note=note.id)  # fmt: skip
        reference = debtor.reference
    return _back(slug, reference, "note")


@bp.post(f"{CASE}/resend")
@requires("manage")
def case_resend(slug: str, reference: str):
    """Send the debtor's link again on a channel (refused when paid, held, opted out or the
    campaign is not live)."""
    channel = request.form.get("channel", "")
    ctx = context()
    with ctx.db.session() as db:
        campaign = find_campaign(db, slug)
        debtor = find_debtor(db, campaign, reference)
        try:
            outcome = actions.resend_link(db, ctx.settings, debtor, channel)
        except (InboxError, ServiceUnavailable) as exc:
            audit.record(db, g.user, "case.resend_refused", via="web", campaign_id=campaign.id,
                         reference=debtor.reference, channel=channel,
                         reason=str(exc)[:200])  # fmt: skip
            db.commit()
            return _refused(str(exc), 409 if isinstance(exc, InboxConflict | ServiceUnavailable)
                            else 400)  # fmt: skip
        audit.record(db, g.user, "case.resend", via="web", campaign_id=campaign.id,
                     reference=debtor.reference, channel=channel, outcome=outcome)  # fmt: skip
        reference = debtor.reference
    return _back(slug, reference, "resend")
