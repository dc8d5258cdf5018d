"""One-click unsubscribes from the links in messages (bounces and SMS reports: web.inbound)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.messaging import optout, unsublink
from kindly.site.personalise import resolve_locale
from renderer.texts import load_texts
from web.context import context
from web.debtor.hits import TOKEN, find_debtor
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
