"""Tracking: the email-open pixel and click redirects, counted and answered at once.

These routes are the hottest in Kindly (mail scanners hit every link within seconds of a
send): they read the token from a short-lived cache and hand the event to the buffer, so a
hit costs no database query when Redis is configured.
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, redirect, request

from web.context import context
from web.debtor.hits import hit, judge, record_hit, tracked

bp = Blueprint("track", __name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
TARGETS = {
    "site": "",
    "pay": "/pay",
    "plan": "/plan",
    "letter": "/letter.pdf",
    "video": "/video.mp4",
    "offer": "/offer",
}


@bp.get("/o/<token>.gif")
def opened(token: str):
    """The 1×1 image in an email: an open."""
    debtor = tracked(token, gate=False)
    if request.method != "HEAD":
        record_hit(None, debtor, "opened", channel="email", agent=judge(None, debtor, hit()))
    return Response(PIXEL, mimetype="image/gif")


@bp.get("/c/<token>")
def clicked(token: str):
    """A tracked link from an email, SMS or letter: count the click, then go to the page."""
    target = request.args.get("to", "site")
    if target not in TARGETS:
        abort(404)
    current = hit()
    debtor = tracked(token, gate=False)
    if request.method != "HEAD":
        # with the journal, the burst over every link is settled by its shipper (no round trip)
        journaled = context().journal is not None
        agent = judge(None, debtor, current, target=None if journaled else target)
        burst = target if journaled and agent == "human" else None
        record_hit(None, debtor, "clicked", channel=current.channel, agent=agent,
                   data={"to": target}, burst=burst)  # fmt: skip
    query = "?" + urlencode({"c": current.channel}) if current.channel else ""
    return redirect(f"/s/{token}{TARGETS[target]}{query}", code=302)
