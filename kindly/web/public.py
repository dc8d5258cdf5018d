"""The debtor's pages: the microsite with live state, paying and asking for a plan."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, request, send_file
from markupsafe import Markup, escape

from kindly.core import artifacts, ledger
from kindly.core.money import format_minor
from kindly.core.personalise import build_view
from kindly.renderer.site import STATUS_MARKER, render_site
from kindly.renderer.texts import load_texts
from kindly.web.debtors import context, count, find_debtor

bp = Blueprint("public", __name__)

FILES = {
    "letter.pdf": "letter",
    "video.mp4": "video",
    "poster.jpg": "poster",
    "captions.vtt": "captions",
}


def debtor_view(session, debtor):
    """The debtor's view with the live balance."""
    ctx = context()
    return build_view(
        debtor,
        debtor.campaign,
        base_url=ctx.settings.base_url,
        balance_minor=ledger.balance_minor(session, debtor),
        paid_minor=ledger.paid_minor(session, debtor),
    )


def _status(session, debtor, texts: dict[str, str], locale: str) -> Markup:
    """The live notices shown above the stored page."""
    notices: list[tuple[str, str]] = []
    outcome = request.args.get("payment")
    paid = ledger.paid_minor(session, debtor)
    balance = debtor.amount_due_minor - paid
    if outcome == "failed":
        notices.append(("warn", texts["status_failed"]))
    elif outcome == "canceled":
        notices.append(("info", texts["status_canceled"]))
    if paid > 0:
        amount = format_minor(paid, debtor.currency, locale.replace("-", "_"))
        notices.append(("ok", texts["status_paid"].format(amount=amount)))
        if balance > 0:
            left = format_minor(balance, debtor.currency, locale.replace("-", "_"))
            notices.append(("info", texts["status_balance"].format(amount=left)))
        else:
            notices.append(("ok", texts["status_settled"]))
    if request.args.get("plan") == "requested":
        notices.append(("ok", texts["status_plan"]))
    return Markup("").join(
        Markup('<p class="notice {}">{}</p>').format(kind, escape(text)) for kind, text in notices
    )


@bp.get("/s/<token>")
def site(token: str):
    """The microsite: the stored page plus live state; re-rendered when the balance moved."""
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        count(session, debtor, "viewed")
        view = debtor_view(session, debtor)
        stored = artifacts.find(session, debtor, "site")
        html: str | None = None
        if stored is not None and view.amount_minor == debtor.amount_due_minor:
            try:
                html = ctx.storage.get(stored.key).decode("utf-8")
            except KeyError:
                html = None
        if html is None:
            # Not rendered yet, or the balance changed since: render now (a few ms).
            has = {
                kind: artifacts.find(session, debtor, kind) is not None for kind in FILES.values()
            }
            html = render_site(view, has_video=has["video"], has_letter=has["letter"]).decode()
        texts = load_texts("site").for_lang(view.lang)
        status = _status(session, debtor, texts, view.locale)
    return Response(html.replace(STATUS_MARKER, str(status), 1), mimetype="text/html")


@bp.get("/s/<token>/<name>")
def file(token: str, name: str):
    """The debtor's letter, video, poster or captions, streamed or via a short-lived URL."""
    kind = FILES.get(name)
    if kind is None:
        abort(404)
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        artifact = artifacts.find(session, debtor, kind)
        if artifact is None:
            abort(404)
        if kind == "letter":
            count(session, debtor, "cta", cta="letter")
        key, mimetype = artifact.key, artifact.content_type
    path = ctx.storage.local_path(key)
    if path is not None:
        return send_file(path, mimetype=mimetype, conditional=True, max_age=0)
    url = ctx.storage.presigned_url(key, expires=600)
    if url is None:
        abort(404)
    return redirect(url, code=302)
