"""/api/v1 inbox: a campaign's questions, disputes and call-back requests, and answering one
(the same rules as the dashboard's inbox: kindly.inbox)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import g, request

from kindly.accounts import audit
from kindly.inbox import answer, service
from kindly.inbox.service import InboxConflict, InboxError
from web.api.common import authenticated, bp, campaign_or_404, iso, problem
from web.context import context


def _item_json(row: service.Row) -> dict[str, Any]:
    item = row.item
    return {
        "id": item.id, "reference": row.reference, "topic": item.topic, "status": item.status,
        "owner": item.owner, "message": item.message, "phone": item.phone,
        "source": item.source, "case_state": row.case_state, "overdue": row.overdue,
        "created_at": iso(item.created_at), "due_at": iso(item.due_at),
        "answered_at": iso(item.answered_at) if item.answered_at else None,
    }  # fmt: skip


@bp.get("/campaigns/<slug>/inbox")
@authenticated("manage")
def inbox(slug: str):
    """The campaign's open items (closed=true: the closed ones), overdue first."""
    view = request.args.get("view", "all")
    if view not in service.VIEWS:
        return problem(400, f"view must be one of {', '.join(service.VIEWS)}")
    closed = request.args.get("closed", "false")
    if closed not in ("true", "false"):
        return problem(400, "closed must be true or false")
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        rows = service.listing(db, [campaign.id], view=view, me=g.api_user.email,
                               closed=closed == "true", now=dt.datetime.now(dt.UTC))  # fmt: skip
        return {"items": [_item_json(row) for row in rows]}


@bp.post("/campaigns/<slug>/inbox/<int:item_id>/reply")
@authenticated("manage")
def inbox_reply(slug: str, item_id: int):
    """Answer an item by email, SMS or on the debtor's page."""
    body = request.get_json(silent=True)
    ctx = context()
    with ctx.db.session() as db:
        campaign = campaign_or_404(db, slug)  # out of scope answers 404 before anything else
        item = service.find(db, item_id, [campaign.id])
        if item is None:
            return problem(404, f"no inbox item {item_id} in campaign {slug!r}")
        if not isinstance(body, dict):
            return problem(400, "send a JSON object")
        text, channel = body.get("body"), body.get("channel")
        if not isinstance(text, str) or not isinstance(channel, str):
            return problem(400, "body and channel: strings")
        try:
            sent = answer.reply(db, ctx.settings, item, author=g.api_user.email, body=text,
                                channel=channel)  # fmt: skip
        except InboxError as exc:
            return problem(409 if isinstance(exc, InboxConflict) else 400, str(exc))
        audit.record(db, g.api_user, "inbox.reply", via="api", campaign_id=campaign.id,
                     item=item.id, channel=channel, status=sent.status)  # fmt: skip
        return {
            "id": sent.id, "item": item.id, "channel": sent.channel, "status": sent.status,
            "author": sent.author, "created_at": iso(sent.created_at),
            "item_status": item.status,
        }, 201  # fmt: skip
