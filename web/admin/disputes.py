"""Disputes in the cockpit: the debtor's page shows each dispute with its files (through
links that work for five minutes) and, to managers, the form that resolves an open one:
upheld (the amount corrected, or the claim closed) or rejected (the reason goes to the
debtor). Every resolution is audited and releases the dispute's hold."""

from __future__ import annotations

from typing import Any

from flask import abort, g, redirect, request, send_file
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import scopes
from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import case_of
from kindly.disputes import links, service
from kindly.disputes.models import Dispute, DisputeFile
from kindly.money import MoneyError, format_minor, parse_amount, to_minor
from web import refpath
from web.admin.campaigns import find_campaign
from web.admin.case import CASE, _refused
from web.admin.common import bp, requires
from web.admin.debtors import find_debtor
from web.context import context
from web.debtor.case import reply_channel


def file_link(row: DisputeFile) -> str:
    """A link to one file that works for links.LINK_SECONDS: S3 presigns it; the folder
    store's goes through the cockpit's route with a signed, expiring token."""
    ctx = context()
    url = ctx.storage.presigned_url(row.key, expires=links.LINK_SECONDS)
    return url or f"/admin/dispute-files/{links.sign(ctx.settings.secret_key, row.id)}"


def panel(db: Session, debtor: Debtor, personal: bool) -> list[dict[str, Any]]:
    """The debtor's disputes, newest first, for the cockpit (files and words only for roles
    that see personal data)."""
    rows = db.scalars(
        select(Dispute).where(Dispute.debtor_id == debtor.id).order_by(Dispute.id.desc())
    ).all()
    shown = []
    for d in rows:
        files = service.files_of(db, d) if personal else []
        shown.append({
            "id": d.id, "state": d.state, "reason": service.REASON_LABELS.get(d.reason, d.reason),
            "text": d.text if personal else None, "item": d.item_ref, "answer_by": d.answer_by,
            "opened_at": d.opened_at, "outcome": d.outcome,
            "answer": d.answer if personal else None, "channel": d.answer_channel,
            "resolved_by": d.resolved_by, "resolved_at": d.resolved_at,
            "before": format_minor(d.amount_before_minor, debtor.currency, "en_GB")
            if d.amount_before_minor is not None else None,
            "after": format_minor(d.amount_after_minor, debtor.currency, "en_GB")
            if d.amount_after_minor is not None else None,
            "files": [{"id": f.id, "name": f.filename, "type": f.content_type, "size": f.size,
                       "scan": f.scan, "url": file_link(f)} for f in files],
        })  # fmt: skip
    return shown


@bp.post(f"{CASE}/disputes/<int:dispute_id>/resolve")
@requires("manage")
def dispute_resolve(slug: str, reference: str, dispute_id: int):
    """Uphold (correct the amount or close the claim) or reject an open dispute."""
    outcome = request.form.get("outcome", "")
    answer = request.form.get("answer", "")
    ctx = context()
    with ctx.db.session() as db:
        campaign = find_campaign(db, slug)  # out of scope: 404 before the form is read
        debtor = find_debtor(db, campaign, reference)
        dispute = db.get(Dispute, dispute_id)
        if dispute is None or dispute.debtor_id != debtor.id:
            abort(404)
        amount = None
        if outcome == "corrected":
            try:
                value = parse_amount(request.form.get("amount", ""), debtor.currency)
            except MoneyError as exc:
                return _refused(f"the corrected amount {exc}", 400)
            amount = to_minor(value, debtor.currency)
        channel = reply_channel(debtor, case_of(db, debtor))
        try:
            service.resolve(db, ctx.settings, dispute, user=g.user, outcome=outcome,
                            answer=answer, amount_minor=amount,
                            channel="page" if channel == "letter" else channel)  # fmt: skip
        except service.DisputeError as exc:
            return _refused(str(exc), 409 if exc.code == "resolved" else 400)
        reference = debtor.reference
    path = f"/admin/campaigns/{slug}/debtors/{refpath.segment(reference)}"
    return redirect(f"{path}?done=dispute#disputes", code=303)


@bp.get("/dispute-files/<token>")
@requires("manage")
def dispute_file(token: str):
    """One dispute file from the folder store, while its signed link is valid (else 404);
    sent with its checked type, never sniffed, in a sandbox."""
    ctx = context()
    file_id = links.verify(ctx.settings.secret_key, token)
    if file_id is None:
        abort(404)
    with ctx.db.session() as db:
        row = db.get(DisputeFile, file_id)
        if row is None:
            abort(404)
        dispute = db.get(Dispute, row.dispute_id)
        slug = db.scalar(select(Campaign.slug).where(Campaign.id == dispute.campaign_id))
        if scopes.find_campaign(db, slug, scopes.access_of(g.user)) is None:
            abort(404)
        key, mimetype, name = row.key, row.content_type, row.filename
    path = ctx.storage.local_path(key)
    if path is None:
        abort(404)
    response = send_file(path, mimetype=mimetype, download_name=name, max_age=0)
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
