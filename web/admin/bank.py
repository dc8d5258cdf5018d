"""The bank page: upload a statement, see what each import did, and work the review queue.

A statement is matched against every campaign, and an entry no rule placed belongs to no
campaign yet: uploading, the queue and its decisions are for managers whose scope reaches
every campaign. A scoped user sees only the transfers booked to their own campaigns.
"""

from __future__ import annotations

from typing import Any

from flask import abort, g, redirect, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit, scopes
from kindly.bank.entries import StatementError
from kindly.campaigns.models import Campaign, Debtor
from kindly.reconciliation import review
from kindly.reconciliation.importer import import_statement
from kindly.reconciliation.models import BankAllocation, BankEntry, BankStatement
from web.admin.common import bp, requires
from web.context import context

RECENT = 50
"""Statements and booked transfers the page lists."""


def _everything() -> bool:
    return not scopes.access_of(g.user)


def _page(db: Session, status: int = 200, **extra: Any):
    access = scopes.access_of(g.user)
    booked = (
        select(BankAllocation, BankEntry, Debtor, Campaign)
        .join(BankEntry, BankEntry.id == BankAllocation.entry_id)
        .join(Debtor, Debtor.id == BankAllocation.debtor_id)
        .join(Campaign, Campaign.id == BankAllocation.campaign_id)
        .order_by(BankAllocation.id.desc())
        .limit(RECENT)
    )
    data: dict[str, Any] = {
        "everything": not access,
        "booked": db.execute(scopes.visible(booked, access)).all(),
        "statements": [],
        "waiting": [],
        "shown": None,
    }
    if not access:
        data["statements"] = db.scalars(
            select(BankStatement).order_by(BankStatement.id.desc()).limit(RECENT)
        ).all()
        data["waiting"] = review.waiting(db)
        shown = request.args.get("statement", "")
        data["shown"] = db.get(BankStatement, int(shown)) if shown.isdigit() else None
    data.update(extra)
    return render_template("admin/bank.html", **data), status


@bp.get("/bank")
def bank_page():
    """Statements, the review queue and the transfers booked."""
    with context().db.session() as db:
        return _page(db)


@bp.post("/bank/upload")
@requires("manage")
def bank_upload():
    """Import one statement file: all of it or nothing."""
    if not _everything():
        abort(403)
    upload = request.files.get("statement")
    with context().db.session() as db:
        if upload is None or not upload.filename:
            return _page(db, 422, problem="Choose a statement file (camt.053, camt.054 or MT940).")
        slug = request.form.get("campaign", "").strip()
        campaign = scopes.find_campaign(db, slug, ()) if slug else None
        if slug and campaign is None:
            return _page(db, 422, problem=f"There is no campaign “{slug}”.")
        try:
            result = import_statement(
                db, context().storage, upload.read(), upload.filename[:255], campaign=campaign,
                account=request.form.get("account", "").strip() or None, by=g.user.email,
            )  # fmt: skip
        except StatementError as error:
            db.rollback()
            return _page(db, 422, problem=f"The file was not imported: {error}")
        audit.record(db, g.user, "bank.import", via="web",
                     campaign_id=campaign.id if campaign else None,
                     statement=result.statement_id, entries=result.entries,
                     matched=result.matched, unmatched=result.unmatched)  # fmt: skip
        statement_id = result.statement_id
    return redirect(f"/admin/bank?statement={statement_id}", code=303)


def _decision(entry_id: int, decide) -> Any:
    if not _everything():
        abort(403)
    with context().db.session() as db:
        try:
            decide(db)
        except review.ReviewError as error:
            db.rollback()
            return _page(db, 422, problem=f"Entry {entry_id}: {error}")
    return redirect(f"/admin/bank#entry-{entry_id}", code=303)


def _debtor(db: Session, reference: str) -> Debtor:
    slug, sep, ref = reference.strip().partition("/")
    if sep and (campaign := scopes.find_campaign(db, slug, ())) is not None:
        return review.find_debtor(db, ref, campaign)
    return review.find_debtor(db, reference)


@bp.post("/bank/entries/<int:entry_id>/assign")
@requires("manage")
def bank_assign(entry_id: int):
    """Book a waiting entry to one case."""
    reference = request.form.get("reference", "")

    def decide(db: Session) -> None:
        if not reference.strip():
            raise review.ReviewError("give the case's reference")
        review.assign(db, entry_id, _debtor(db, reference), user=g.user, via="web")

    return _decision(entry_id, decide)


@bp.post("/bank/entries/<int:entry_id>/split")
@requires("manage")
def bank_split(entry_id: int):
    """Book a waiting entry across cases, one `REF=AMOUNT` per line."""
    lines = [line.strip() for line in request.form.get("parts", "").splitlines() if line.strip()]

    def decide(db: Session) -> None:
        entry = db.get(BankEntry, entry_id)
        if entry is None:
            raise review.ReviewError("there is no such entry")
        parts = []
        for line in lines:
            reference, sep, amount = line.rpartition("=")
            if not sep or not reference.strip():
                raise review.ReviewError(f"“{line}”: write each part as REF=AMOUNT")
            parts.append(
                review.Part(_debtor(db, reference), review.amount_of(amount, entry.currency))
            )
        review.split(db, entry_id, parts, user=g.user, via="web")

    return _decision(entry_id, decide)


@bp.post("/bank/entries/<int:entry_id>/not-ours")
@requires("manage")
def bank_not_ours(entry_id: int):
    """Mark a waiting entry as belonging to no case."""
    note = request.form.get("note", "")
    return _decision(
        entry_id, lambda db: review.not_ours(db, entry_id, note, user=g.user, via="web")
    )
