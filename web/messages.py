"""What comes back from messages: one-click unsubscribes, bounces and SMS delivery reports."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.infra.constant_time import same
from kindly.messaging import bounces, optout, unsublink
from kindly.site.personalise import resolve_locale
from renderer.texts import load_texts
from web.debtor.hits import TOKEN, context, find_debtor
from web.security import csrf_exempt

bp = Blueprint("messages", __name__)
CHANNELS = ("email", "sms")


@bp.route("/u/<credential>", methods=["GET", "POST"])
@csrf_exempt  # the link's credential is the proof; mail clients POST without a session (RFC 8058)
def unsubscribe(credential: str):
    """GET only asks (mail scanners follow links); POST unsubscribes from the channel."""
    channel = request.args.get("c", "email")
    if channel not in CHANNELS:
        abort(404)
    with context().db.session() as session:
        debtor = _unsubscribing(session, credential, channel)
        _, lang, _ = resolve_locale(debtor, debtor.campaign)
        done = False
        if request.method == "POST":
            if request.form.get("List-Unsubscribe") != "One-Click":
                abort(400)
            optout.opt_out(session, debtor, channel, source="list-unsubscribe")
            done = True
    texts = load_texts("site").for_lang(lang)
    name = texts["channel_email" if channel == "email" else "channel_sms"]
    return render_template("web/unsubscribe.html", t=texts, lang=lang, done=done,
                           channel_name=name)  # fmt: skip


def _unsubscribing(session: Session, credential: str, channel: str) -> Debtor:
    """The debtor an unsubscribe link names, or 404. Links sent before unsubscribe links had
    their own credential carry the page token: they still unsubscribe (an old email works
    after the page link expired), but no new message carries one."""
    if TOKEN.match(credential):
        return find_debtor(session, credential, gate=False, allow_expired=True)
    debtor_id = unsublink.debtor_id(context().settings.secret_key, credential, channel)
    debtor = session.get(Debtor, debtor_id) if debtor_id is not None else None
    if debtor is None:
        abort(404)
    return debtor


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
