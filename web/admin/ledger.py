"""The books in the cockpit: record a payment the creditor received directly, reverse it by a
counter-entry, and download a campaign's ledger for a period. Managers only; audited."""

from __future__ import annotations

import datetime as dt
import io

from flask import Response, g, redirect, render_template, request

from kindly.accounts import audit
from kindly.ledger import export, manual
from web import refpath
from web.admin.campaigns import find_campaign
from web.admin.common import bp, requires
from web.admin.debtors import find_debtor
from web.context import context

CASE = "/campaigns/<slug>/debtors/<reference>"


def _back(slug: str, reference: str, done: str):
    path = f"/admin/campaigns/{slug}/debtors/{refpath.segment(reference)}"
    return redirect(f"{path}?done={done}#books", code=303)


def _refused(message: str, status: int = 422):
    return render_template("admin/message.html", title="Nothing was booked",
                           message=message), status  # fmt: skip


def _day(raw: str, name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        raise manual.RecordError(f"{name} must be a date (YYYY-MM-DD), not {raw[:20]!r}") from None


@bp.post(f"{CASE}/payments")
@requires("manage")
def record_payment(slug: str, reference: str):
    """Book money the creditor received directly (cash, cheque, another account)."""
    form = request.form
    with context().db.session() as db:
        campaign = find_campaign(db, slug)  # out of scope: 404 before the form is read
        debtor = find_debtor(db, campaign, reference)
        try:
            on = _day(form.get("date", "").strip(), "the date")
            if on is None:
                raise manual.RecordError("give the day the money arrived")
            manual.record(db, debtor, form.get("amount", ""), method=form.get("method", ""),
                          on=on, note=form.get("note", ""), user=g.user, via="web")  # fmt: skip
        except manual.RecordError as error:
            db.rollback()
            return _refused(f"The payment was not recorded: {error}.")
        reference = debtor.reference
    return _back(slug, reference, "payment")


@bp.post(f"{CASE}/payments/<int:payment_id>/reverse")
@requires("manage")
def reverse_payment(slug: str, reference: str, payment_id: int):
    """Undo a recorded payment by a counter-entry; the original stays in the books."""
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        debtor = find_debtor(db, campaign, reference)
        try:
            payment = manual.payment_or_fail(db, payment_id, campaign.id)
            if payment.debtor_id != debtor.id:
                raise manual.RecordError(f"payment {payment_id} is not of case {debtor.reference}")
            manual.reverse(db, payment, note=request.form.get("note", ""), user=g.user,
                           via="web")  # fmt: skip
        except manual.RecordError as error:
            db.rollback()
            return _refused(f"The payment was not reversed: {error}.")
        reference = debtor.reference
    return _back(slug, reference, "reversal")


@bp.get("/campaigns/<slug>/ledger.csv")
@requires("manage")
def ledger_csv(slug: str):
    """The campaign's bookings from `from` to `to` (inclusive; either may be empty) as CSV."""
    try:
        start = _day(request.args.get("from", "").strip(), "from")
        end = _day(request.args.get("to", "").strip(), "to")
    except manual.RecordError as error:
        return _refused(f"No ledger: {error}.", 400)
    if start and end and start > end:
        return _refused(f"No ledger: from {start} is after to {end}.", 400)
    out = io.StringIO()
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        count = export.write(out, export.rows(db, campaign, start, end))
        audit.record(db, g.user, "export.ledger", via="web", campaign_id=campaign.id, rows=count,
                     start=start and start.isoformat(), end=end and end.isoformat())  # fmt: skip
    period = "".join(f"-{day.isoformat()}" for day in (start, end) if day)
    disposition = f'attachment; filename="{slug}-ledger{period}.csv"'
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": disposition})  # fmt: skip
