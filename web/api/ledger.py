"""/api/v1 for the creditor's books: record a payment made elsewhere, reverse it by a
counter-entry, and the ledger export of a campaign and period (CSV)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from flask import Response, g, request
from sqlalchemy import select

from kindly.accounts import audit
from kindly.campaigns.models import Debtor
from kindly.cases.read import case_of
from kindly.ledger import export, manual
from kindly.money import from_minor
from kindly.payments import allocation, ledger
from kindly.payments.models import Payment
from web import refpath
from web.api.common import authenticated, bp, campaign_or_404, problem
from web.context import context


def _body() -> dict[str, Any] | Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(400, "send a JSON object")
    return body


def _day(value: Any, name: str) -> dt.date | None:
    """An ISO date from the body or query; ValueError naming the field."""
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def parts_json(debtor: Debtor, paid_minor: int) -> dict[str, str] | None:
    """What is still open of each part of the claim, as decimals (None: not broken down)."""
    still = allocation.open_parts(debtor, paid_minor)
    if still is None:
        return None
    return {part: str(from_minor(minor, debtor.currency)) for part, minor in still.items()}


def payment_json(payment: Payment) -> dict[str, Any]:
    """One ledger row as the API shows it."""
    return {
        "id": payment.id, "kind": payment.kind, "provider": payment.provider,
        "method": payment.method, "status": payment.status,
        "amount": str(from_minor(payment.amount_minor, payment.currency)),
        "currency": payment.currency,
        "date": payment.received_on.isoformat() if payment.received_on else None,
        "note": payment.notes,
    }  # fmt: skip


def _case_json(db, debtor: Debtor) -> dict[str, Any]:
    paid = ledger.paid_minor(db, debtor)
    return {
        "reference": debtor.reference, "state": case_of(db, debtor).state,
        "open_balance": str(from_minor(ledger.balance_after(debtor, paid), debtor.currency)),
        "open_parts": parts_json(debtor, paid),
    }  # fmt: skip


@bp.post("/campaigns/<slug>/debtors/<reference>/payments")
@authenticated("manage")
def record_payment(slug: str, reference: str):
    """Record a payment the creditor received directly; 422 says what is wrong, nothing kept."""
    body = _body()
    if isinstance(body, Response):
        return body
    reference = refpath.reference(reference)
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        debtor = db.scalar(
            select(Debtor).where(Debtor.campaign_id == campaign.id, Debtor.reference == reference)
        )
        if debtor is None:
            return problem(404, f"no debtor {reference!r} in {slug}")
        try:
            on = _day(body.get("date"), "date")
            if on is None:
                return problem(422, "date: required (YYYY-MM-DD)")
            payment = manual.record(
                db, debtor, str(body.get("amount", "")), method=str(body.get("method", "")),
                on=on, note=str(body.get("note") or ""),
                currency=body.get("currency") and str(body["currency"]), user=g.api_user,
                via="api",
            )  # fmt: skip
        except (manual.RecordError, ValueError) as error:
            db.rollback()
            return problem(422, str(error))
        return {"payment": payment_json(payment), "case": _case_json(db, debtor)}, 201


@bp.post("/campaigns/<slug>/payments/<int:payment_id>/reverse")
@authenticated("manage")
def reverse_payment(slug: str, payment_id: int):
    """Undo a recorded payment by a counter-entry (the original stays); a note is required."""
    body = _body()
    if isinstance(body, Response):
        return body
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        try:
            payment = manual.payment_or_fail(db, payment_id, campaign.id)
        except manual.RecordError as error:
            return problem(404, str(error))
        try:
            row = manual.reverse(db, payment, note=str(body.get("note") or ""),
                                 user=g.api_user, via="api")  # fmt: skip
        except manual.RecordError as error:
            db.rollback()
            return problem(422, str(error))
        debtor = db.get(Debtor, payment.debtor_id)
        return {"payment": payment_json(row), "case": _case_json(db, debtor)}, 201


@bp.get("/campaigns/<slug>/ledger")
@authenticated("manage")
def ledger_export(slug: str):
    """One CSV row per booking of the campaign from `from` to `to` (inclusive, ISO dates)."""
    try:
        start = _day(request.args.get("from"), "from")
        end = _day(request.args.get("to"), "to")
    except ValueError as error:
        return problem(400, str(error))
    if start and end and start > end:
        return problem(400, f"from {start} is after to {end}")
    handle = io.StringIO()
    with context().db.session() as db:
        campaign = campaign_or_404(db, slug)
        count = export.write(handle, export.rows(db, campaign, start, end))
        audit.record(db, g.api_user, "export.ledger", via="api", campaign_id=campaign.id,
                     rows=count, start=start and start.isoformat(),
                     end=end and end.isoformat())  # fmt: skip
    name = f"{slug}-ledger{'-' + start.isoformat() if start else ''}" + (
        f"-{end.isoformat()}" if end else ""
    )
    return Response(
        handle.getvalue(), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )  # fmt: skip
