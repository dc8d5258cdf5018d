"""What comes back from messages: one-click unsubscribes, bounces and SMS delivery reports."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from kindly.core.constant_time import same
from kindly.core.messaging import bounces, optout
from kindly.core.personalise import resolve_locale
from kindly.renderer.texts import load_texts
from kindly.web.debtors import context, find_debtor
from kindly.web.security import csrf_exempt

bp = Blueprint("messages", __name__)
CHANNELS = ("email", "sms")


@bp.route("/u/<token>", methods=["GET", "POST"])
@csrf_exempt  # the link's token is the credential; mail clients POST without a session (RFC 8058)
def unsubscribe(token: str):
    """GET only asks (mail scanners follow links); POST unsubscribes from the channel."""
    channel = request.args.get("c", "email")
    if channel not in CHANNELS:
        abort(404)
    with context().db.session() as session:
        # an unsubscribe link from an old email works after the page link expired
        debtor = find_debtor(session, token, gate=False, allow_expired=True)
        _, lang, _ = resolve_locale(debtor, debtor.campaign)
        done = False
        if request.method == "POST":
            if request.form.get("List-Unsubscribe") != "One-Click":
                abort(400)
            optout.unsubscribe(session, token, channel)
            done = True
    texts = load_texts("site").for_lang(lang)
    name = texts["channel_email" if channel == "email" else "channel_sms"]
    return render_template("web/unsubscribe.html", t=texts, lang=lang, done=done,
                           channel_name=name)  # fmt: skip


def _authorised() -> None:
    """Gateways call with `Authorization: Bearer <KINDLY_WEBHOOK_TOKEN>`; without one set,
    these endpoints do not exist."""
    expected = context().settings.webhook_token
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected:
        abort(404)
    if not sent or not same(sent, expected):
        abort(401)


@bp.post("/webhooks/bounces")
@csrf_exempt
def bounce_report():
    """A delivery status notification (RFC 3464) as the mail server forwards it."""
    _authorised()
    reports = bounces.parse_dsn(request.get_data(cache=False))
    if not reports:
        abort(400)
    with context().db.session() as session:
        kinds = [bounces.apply(session, report) for report in reports]
    return {"applied": [k for k in kinds if k], "unknown": sum(1 for k in kinds if k is None)}


@bp.post("/webhooks/sms")
@csrf_exempt
def sms_report():
    """An SMS gateway's delivery report: {"reference": ..., "status": ...}."""
    _authorised()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or "reference" not in payload:
        abort(400)
    with context().db.session() as session:
        kind = bounces.sms_callback(session, payload)
    return {"applied": kind}
