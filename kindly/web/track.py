"""Tracking: the email-open pixel and click redirects, counted and answered at once."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, redirect, request

from kindly.web.debtors import context, find_debtor, hit, judge, record_hit

bp = Blueprint("track", __name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
TARGETS = {
    "site": "",
    "pay": "/pay",
    "plan": "/plan",
    "letter": "/letter.pdf",
    "video": "/video.mp4",
}


@bp.get("/o/<token>.gif")
def opened(token: str):
    """The 1×1 image in an email: an open."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token, gate=False)
        if request.method != "HEAD":
            agent = judge(session, debtor, hit())
            record_hit(session, debtor, "opened", channel="email", agent=agent)
    return Response(PIXEL, mimetype="image/gif")


@bp.get("/c/<token>")
def clicked(token: str):
    """A tracked link from an email, SMS or letter: count the click, then go to the page."""
    target = request.args.get("to", "site")
    if target not in TARGETS:
        abort(404)
    current = hit()
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token, gate=False)
        if request.method != "HEAD":
            agent = judge(session, debtor, current, target=target)
            record_hit(
                session,
                debtor,
                "clicked",
                channel=current.channel,
                agent=agent,
                data={"to": target},
            )
    query = "?" + urlencode({"c": current.channel}) if current.channel else ""
    return redirect(f"/s/{token}{TARGETS[target]}{query}", code=302)
