"""The sandbox checkout: a clearly marked test payment page, only without Stripe keys."""

from __future__ import annotations

import re

from flask import Blueprint, abort, redirect, render_template, request

from kindly.core import payments
from kindly.core.models import Debtor
from kindly.core.money import format_minor
from kindly.core.personalise import resolve_locale
from kindly.renderer.texts import load_texts
from kindly.web.debtors import context

bp = Blueprint("sandbox", __name__)
REF = re.compile(r"^sbx_[A-Za-z0-9_-]{16,40}$")


def _attempt(session, ref: str):
    ctx = context()
    if not ctx.settings.payments_sandbox or not REF.match(ref):
        abort(404)
    payment = payments.find_payment(session, "sandbox", ref)
    if payment is None:
        abort(404)
    debtor = session.get(Debtor, payment.debtor_id)
    return payment, debtor


@bp.get("/sandbox/checkout/<ref>")
def checkout(ref: str):
    """The test checkout page with succeed, fail and cancel buttons."""
    ctx = context()
    with ctx.db.session() as session:
        payment, debtor = _attempt(session, ref)
        _, lang, babel = resolve_locale(debtor, debtor.campaign)
        return render_template(
            "web/sandbox.html",
            t=load_texts("site").for_lang(lang),
            lang=lang,
            amount=format_minor(payment.amount_minor, payment.currency, babel),
            creditor=debtor.creditor or debtor.campaign.creditor or "",
            reference=debtor.reference,
            status=payment.status,
        )


@bp.post("/sandbox/checkout/<ref>")
def outcome(ref: str):
    """Apply the chosen outcome exactly as a provider's webhook would, then go back."""
    result = request.form.get("outcome", "")
    if result not in payments.OUTCOMES:
        abort(400)
    ctx = context()
    with ctx.db.session() as session:
        payment, debtor = _attempt(session, ref)
        if payment.status == "started":
            payments.settle(session, "sandbox", ref, result)
        token = debtor.token
    return redirect(f"/s/{token}?payment={result}", code=303)
