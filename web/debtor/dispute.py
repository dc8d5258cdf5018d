"""The debtor's dispute: a reason from a list, their words and up to five documents (PDF,
JPEG, PNG), checked by content and scanned before anything is kept (kindly.disputes)."""

from __future__ import annotations

from flask import redirect, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from kindly.disputes import service
from kindly.disputes.files import MAX_FILE_BYTES, MAX_FILES, FileRefused, Upload
from kindly.disputes.models import REASONS
from kindly.disputes.scan import ScanUnavailable
from kindly.inbox import service as inbox
from web.context import context
from web.debtor import limits
from web.debtor.common import DebtorForm, bp, lang_of, texts_for
from web.debtor.hits import TOKEN, confirm_person

MAX_MB = MAX_FILE_BYTES // (1024 * 1024)


def refusal(texts: dict[str, str], code: str, name: str = "") -> str:
    """The debtor's message for a refused file or form, in their language."""
    return texts[f"dispute_error_{code}"].format(name=name, max_files=MAX_FILES, max_mb=MAX_MB)


def uploads_of() -> list[Upload]:
    """The files the form carried (empty file inputs left out); each read at most one byte
    past the limit, so an oversized one is known without keeping it all."""
    found = []
    for storage in request.files.getlist("files"):
        if not storage or not storage.filename:
            continue
        found.append(Upload(name=storage.filename, data=storage.stream.read(MAX_FILE_BYTES + 1)))
    return found


@bp.route("/s/<token>/dispute", methods=["GET", "POST"])
@limits.limited("dispute")
def dispute(token: str):
    """The dispute form, and opening a dispute from it (303 back to the page)."""
    ctx = context()
    with ctx.db.session() as session:
        form = DebtorForm(session, token)
        texts = form.texts
        error = None
        latest = service.current(session, form.debtor)
        if latest is not None and latest.state == "open":
            error = refusal(texts, "already_open")
        elif request.method == "POST":
            reason = request.form.get("reason", "")
            try:
                service.open_dispute(
                    session, ctx.storage, form.debtor, reason=reason,
                    text=request.form.get("text", ""), uploads=uploads_of(),
                    scanner=service.Scanner(ctx.settings.clamd_url),
                    item_ref=request.form.get("item") or None,
                )  # fmt: skip
            except FileRefused as exc:
                error = refusal(texts, exc.code, exc.name)
            except service.DisputeError as exc:
                error = refusal(texts, exc.code)
            except ScanUnavailable:
                error = refusal(texts, "scan")
            else:
                # its `contact` and `hold` events are the record; the POST was a person
                confirm_person(session, form.debtor)
                return redirect(f"/s/{token}?done=dispute", code=303)
            session.rollback()  # nothing of a refused dispute is kept
        else:
            form.looked("dispute")
        chosen = request.form.get("reason", "") if request.method == "POST" else ""
        chosen_item = request.form.get("item", "")[:100] if request.method == "POST" else ""
        status = 400 if error and request.method == "POST" else 200
        return form.render(
            "web/dispute.html",
            error=error,
            reasons=REASONS,
            chosen=chosen,
            chosen_item=chosen_item,
            text=request.form.get("text", "")[: service.MAX_TEXT] if error else "",
            open_dispute=latest is not None and latest.state == "open",
            max_files=MAX_FILES,
            max_mb=MAX_MB,
            replies=inbox.replies_for(session, form.debtor),
        ), status


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge):
    """A body past the limit: on the dispute form, the debtor's own message in their
    language (nothing was read, nothing kept); elsewhere the app's plain 413 page."""
    token = (request.view_args or {}).get("token", "")
    if request.endpoint == "public.dispute" and TOKEN.match(token or ""):
        from sqlalchemy import select

        from kindly.campaigns.models import Debtor
        from web.debtor.common import debtor_view

        with context().db.session() as session:
            debtor = session.scalar(select(Debtor).where(Debtor.token == token))
            if debtor is not None:
                view = debtor_view(session, debtor)
                texts = texts_for(view, debtor)
                lang = lang_of(debtor)
                message = refusal(texts, "too_much")
                title = texts["dispute_title"]
                page = render_template("web/message.html", t=texts, lang=lang, title=title,
                                       message=message)  # fmt: skip
                return page, 413
    from web import _message_page

    return _message_page("error", 413)
