"""The refunds page: credits to hand back, listed from the ledger, approved by a manager.

Each user sees and approves the refunds of the campaigns in their scope only; a refund out of
scope answers exactly like one that does not exist. Approved refunds are paid out by the
pain.001 file `kindly refunds export` writes (docs/payments.md).
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, g, redirect, render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit, scopes
from kindly.campaigns.models import Campaign
from kindly.payments.iban import format_iban
from kindly.refunds import service
from kindly.refunds.models import RefundExport
from web.admin.common import bp, requires
from web.context import context
from web.download import attachment

RECENT = 20
"""Exported files the page lists."""


def _visible(query):
    return scopes.visible(query, scopes.access_of(g.user))


def _campaign_ids(db: Session) -> list[int] | None:
    if not scopes.access_of(g.user):
        return None
    return list(db.scalars(_visible(select(Campaign.id))))


def _page(db: Session, status: int = 200, **extra: Any):
    service.sync(db, _campaign_ids(db))
    rows = service.listed(db, visible=_visible)
    everything = not scopes.access_of(g.user)
    data: dict[str, Any] = {
        "iban": format_iban,
        "waiting": [r for r in rows if r[0].status in service.WAITING],
        "past": [r for r in rows if r[0].status not in service.WAITING],
        "exports": list(
            db.scalars(select(RefundExport).order_by(RefundExport.id.desc()).limit(RECENT))
        )
        if everything
        else [],
    }
    data.update(extra)
    return render_template("admin/refunds.html", **data), status


@bp.get("/refunds")
def refunds_page():
    """Refunds due and approved, and those paid out or canceled."""
    with context().db.session() as db:
        return _page(db)


@bp.post("/refunds/<int:refund_id>/approve")
@requires("manage")
def refund_approve(refund_id: int):
    """Approve one due refund for the next pain.001 file (audited)."""
    if refund_id > 2**31 - 1:
        abort(404)
    with context().db.session() as db:
        service.sync(db, _campaign_ids(db))
        try:
            refund = service.refund_or_fail(db, refund_id, visible=_visible)
        except service.RefundError:
            abort(404)
        try:
            service.approve(db, refund, user=g.user, via="web")
        except service.RefundError as error:
            db.rollback()
            return _page(db, 422, problem=str(error).capitalize() + ".")
    return redirect(f"/admin/refunds#refund-{refund_id}", code=303)


@bp.get("/refunds/exports/<int:export_id>.xml")
@requires("manage")
def refund_export_file(export_id: int):
    """A pain.001 written earlier, as written (a file may hold several campaigns' refunds, so
    only for managers whose scope reaches every campaign); audited, it names payers."""
    if scopes.access_of(g.user) or export_id > 2**31 - 1:
        abort(404)
    with context().db.session() as db:
        record = db.get(RefundExport, export_id)
        if record is None:
            abort(404)
        audit.record(db, g.user, "refund.download", via="web", export=record.id)
        document, name = record.document, f"pain001-{record.msg_id}"
    return Response(
        document.encode("utf-8"),
        mimetype="application/xml",
        headers={"Content-Disposition": attachment(name, "xml")},
    )
