"""/api/v1/bank: statement files in, the review queue, and assigning a waiting entry.

A statement is matched against every campaign and its unmatched entries belong to no campaign
yet, so these routes need a key whose scope reaches every campaign (a scoped key gets 403).
"""

from __future__ import annotations

import json
from typing import Any

from flask import g, request

from kindly.accounts import audit
from kindly.bank.entries import StatementError
from kindly.campaigns.models import Campaign
from kindly.reconciliation import review
from kindly.reconciliation.importer import import_statement
from web.api.common import authenticated, bp, campaign_or_404, problem
from web.context import context

RAW = ("application/xml", "text/xml", "text/plain", "text/csv", "application/octet-stream")
FULL_SCOPE = "bank statements are matched against every campaign: this needs a key without a scope"


def _full_scope():
    return None if not g.api_access else problem(403, FULL_SCOPE)


@bp.post("/bank/statements")
@authenticated("manage")
def bank_statements():
    """Import one statement file (raw body or multipart field `file`); all or nothing."""
    refused = _full_scope()
    if refused is not None:
        return refused
    mapping: Any = None
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            return problem(400, "send the statement in the form field 'file'")
        data, filename = upload.read(), upload.filename or "statement"
        if request.form.get("mapping"):
            try:
                mapping = json.loads(request.form["mapping"])
            except ValueError:
                return problem(400, "mapping: not JSON")
    elif request.mimetype in RAW:
        data = request.get_data(cache=False)
        filename = request.args.get("filename") or "statement"
    else:
        return problem(415, f"send the file as multipart/form-data or one of {', '.join(RAW)}")
    with context().db.session() as db:
        slug = request.args.get("campaign") or request.form.get("campaign")
        campaign: Campaign | None = campaign_or_404(db, slug) if slug else None
        account = request.args.get("account") or request.form.get("account")
        try:
            result = import_statement(
                db, context().storage, data, filename[:255], campaign=campaign, account=account,
                by=g.api_user.email, mapping=mapping,
            )  # fmt: skip
        except StatementError as error:
            db.rollback()
            return problem(422, str(error), where=error.where)
        audit.record(db, g.api_user, "bank.import", via="api",
                     campaign_id=campaign.id if campaign else None,
                     statement=result.statement_id, entries=result.entries,
                     matched=result.matched, unmatched=result.unmatched)  # fmt: skip
        return result.as_dict()


@bp.get("/bank/unmatched")
@authenticated("manage")
def bank_unmatched():
    """The entries waiting for a decision, oldest first."""
    refused = _full_scope()
    if refused is not None:
        return refused
    with context().db.session() as db:
        return {"entries": [review.summary(entry) for entry in review.waiting(db)]}


@bp.post("/bank/entries/<int:entry_id>/assign")
@authenticated("manage")
def bank_assign(entry_id: int):
    """Book a waiting entry to one case ({"reference"}) or split it ({"parts": [...]})."""
    refused = _full_scope()
    if refused is not None:
        return refused
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not ("reference" in body) ^ ("parts" in body):
        return problem(400, 'send {"reference": …} or {"parts": [{"reference": …, "amount": …}]}')
    with context().db.session() as db:
        try:
            entry = review.entry_or_fail(db, entry_id)
        except review.ReviewError as error:
            status = 404 if "no bank entry" in str(error) else 409
            return problem(status, str(error))
        try:
            if "reference" in body:
                debtor = _debtor(db, body)
                review.assign(db, entry_id, debtor, user=g.api_user, via="api")
            else:
                parts = body["parts"]
                if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
                    return problem(400, "parts: a list of {reference, amount}")
                shares = [
                    review.Part(_debtor(db, p), review.amount_of(str(p.get("amount", "")),
                                                                 entry.currency))
                    for p in parts
                ]  # fmt: skip
                review.split(db, entry_id, shares, user=g.api_user, via="api")
        except review.ReviewError as error:
            db.rollback()
            return problem(422, str(error))
        return {"id": entry.id, "state": entry.state, "rule": entry.rule}


def _debtor(db, body: dict[str, Any]):
    reference = body.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        raise review.ReviewError("reference: the case's reference or payment reference")
    slug = body.get("campaign")
    campaign = campaign_or_404(db, slug) if isinstance(slug, str) and slug else None
    return review.find_debtor(db, reference, campaign)
