"""The inbox: questions, disputes and call-back requests from the debtors' pages, across
the campaigns the signed-in user may see, overdue ones first. A manager takes an item,
answers it (email, SMS or the debtor's page) and closes it; every action is audited.
Viewers see the list without the debtor's words or phone number."""

from __future__ import annotations

import datetime as dt

from flask import abort, g, redirect, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit, scopes
from kindly.accounts.masking import mask
from kindly.accounts.users import can
from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import case_of
from kindly.inbox import answer, service
from kindly.inbox.models import CHANNELS, InboxItem
from kindly.inbox.service import InboxConflict, InboxError
from web.admin.common import bp, requires
from web.context import context

DONE = {"take": "You own this item now.", "give_back": "The item has no owner now.",
        "reply": "The answer went out.", "close": "The item is closed."}  # fmt: skip


def visible_campaigns(db: Session) -> dict[int, str]:
    """The ids and slugs of the campaigns the signed-in user may see."""
    query = scopes.visible(select(Campaign.id, Campaign.slug), scopes.access_of(g.user))
    return dict(db.execute(query).all())


def find_item(db: Session, item_id: int) -> InboxItem:
    """The item if its campaign is in the user's scope, else the dashboard's 404."""
    item = service.find(db, item_id, list(visible_campaigns(db)))
    if item is None:
        abort(404)
    return item


@bp.get("/inbox")
def inbox():
    """Open items (or closed ones), overdue first, filtered to mine or nobody's."""
    view = request.args.get("view", "all")
    if view not in service.VIEWS:
        view = "all"
    closed = request.args.get("closed") == "1"
    personal = can(g.user, "manage")
    now = dt.datetime.now(dt.UTC)
    with context().db.session() as db:
        campaigns = visible_campaigns(db)
        rows = service.listing(db, list(campaigns), view=view, me=g.user.email, closed=closed,
                               now=now)  # fmt: skip
        items = [_row(r, personal) for r in rows]
    overdue = sum(1 for r in items if r["overdue"])
    return render_template("admin/inbox.html", items=items, view=view, closed=closed,
                           overdue=overdue, personal=personal)  # fmt: skip


def _row(row: service.Row, personal: bool) -> dict:
    item = row.item
    return {
        "id": item.id, "slug": row.campaign_slug, "reference": row.reference, "name": row.name,
        "topic": item.topic, "status": item.status, "owner": item.owner,
        "message": item.message if personal else None, "case": row.case_state,
        "due_at": _aware(item.due_at), "created_at": _aware(item.created_at),
        "overdue": row.overdue,
    }  # fmt: skip


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@bp.get("/inbox/<int:item_id>")
def inbox_item(item_id: int):
    """One item: what the debtor wrote, the case's state, the answers so far and the forms."""
    personal = can(g.user, "manage")
    now = dt.datetime.now(dt.UTC)
    with context().db.session() as db:
        item = find_item(db, item_id)
        debtor = db.get(Debtor, item.debtor_id)
        case = case_of(db, debtor)
        replies = service.replies_of(db, [item])[item.id]
        data = {
            "id": item.id, "slug": debtor.campaign.slug, "campaign": debtor.campaign.name,
            "reference": debtor.reference,
            "name": " ".join(f"{debtor.first_name or ''} {debtor.last_name}".split()),
            "topic": item.topic, "status": item.status, "owner": item.owner,
            "message": item.message if personal else None,
            "phone": (item.phone or debtor.phone) if personal else mask(item.phone or debtor.phone),
            "email": debtor.email if personal else mask(debtor.email),
            "source": item.source, "due_at": _aware(item.due_at),
            "created_at": _aware(item.created_at), "answered_at": _aware(item.answered_at),
            "overdue": service.is_overdue(item, now), "case": case.state, "hold": case.hold,
        }  # fmt: skip
        answers = [
            {"at": _aware(r.created_at), "author": r.author, "channel": r.channel,
             "status": r.status, "body": r.body if personal else None, "error": r.error}
            for r in replies
        ]  # fmt: skip
    done = DONE.get(request.args.get("done", ""))
    return render_template("admin/inbox.html", item=data, answers=answers, channels=CHANNELS,
                           personal=personal, done=done)  # fmt: skip


def _refused(message: str, status: int = 409):
    return render_template("admin/message.html", title="Not done", message=message), status


@bp.post("/inbox/<int:item_id>/take")
@requires("manage")
def inbox_take(item_id: int):
    """Own the item (or give it back to nobody with give_back=1)."""
    give_back = request.form.get("give_back") == "1"
    with context().db.session() as db:
        item = find_item(db, item_id)
        try:
            service.take(db, item, None if give_back else g.user.email)
        except InboxError as exc:
            return _refused(str(exc))
        audit.record(db, g.user, "inbox.give_back" if give_back else "inbox.take", via="web",
                     campaign_id=item.campaign_id, item=item.id)  # fmt: skip
    done = "give_back" if give_back else "take"
    return redirect(f"/admin/inbox/{item_id}?done={done}", code=303)


@bp.post("/inbox/<int:item_id>/reply")
@requires("manage")
def inbox_reply(item_id: int):
    """Answer the item on the chosen channel."""
    channel = request.form.get("channel", "")
    body = request.form.get("body", "")
    ctx = context()
    with ctx.db.session() as db:
        item = find_item(db, item_id)
        try:
            sent = answer.reply(db, ctx.settings, item, author=g.user.email, body=body,
                                channel=channel)  # fmt: skip
        except InboxError as exc:
            audit.record(db, g.user, "inbox.reply_refused", via="web",
                         campaign_id=item.campaign_id, item=item.id, channel=channel,
                         reason=str(exc)[:200])  # fmt: skip
            db.commit()
            return _refused(str(exc), 409 if isinstance(exc, InboxConflict) else 400)
        audit.record(db, g.user, "inbox.reply", via="web", campaign_id=item.campaign_id,
                     item=item.id, channel=channel, status=sent.status)  # fmt: skip
    return redirect(f"/admin/inbox/{item_id}?done=reply", code=303)


@bp.post("/inbox/<int:item_id>/close")
@requires("manage")
def inbox_close(item_id: int):
    """Nothing more to do for this item."""
    with context().db.session() as db:
        item = find_item(db, item_id)
        try:
            service.close(db, item)
        except InboxError as exc:
            return _refused(str(exc))
        audit.record(db, g.user, "inbox.close", via="web", campaign_id=item.campaign_id,
                     item=item.id)  # fmt: skip
    return redirect(f"/admin/inbox/{item_id}?done=close", code=303)
