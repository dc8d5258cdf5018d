"""The sandbox checkout: a clearly marked test payment page, only without Stripe keys.

Its buttons do what Stripe does after a checkout: the outcome travels as a signed,
Stripe-shaped event through `kindly.payments.provider_events`, the same code that applies
Stripe's.
"""

from __future__ import annotations

import json
import re
import secrets

from flask import Blueprint, abort, redirect, render_template, request

from kindly.campaigns.models import Debtor
from kindly.claims import offers
from kindly.money import format_minor
from kindly.payments import provider_events
from kindly.payments import service as payments
from kindly.site.personalise import resolve_locale
from renderer.texts import load_texts
from web.context import context

bp = Blueprint("sandbox", __name__)
REF = re.compile(r"^sbx_[A-Za-z0-9_-]{16,40}$")
EVENT_TYPES = {
    "succeeded": "checkout.session.completed",
    "failed": "checkout.session.async_payment_failed",
    "canceled": "checkout.session.expired",
}


def _attempt(session, ref: str):
    ctx = context()
    if not ctx.settings.payments_sandbox or not REF.match(ref):
        abort(404)
    payment = payments.find_payment(session, "sandbox", ref)
    if payment is None:
        abort(404)
    debtor = session.get(Debtor, payment.debtor_id)
    return payment, debtor


def sandbox_event(payment, outcome: str) -> bytes:
    """The Stripe-shaped event the sandbox delivers for an outcome."""
    obj = {
        "id": payment.provider_ref,
        "object": "checkout.session",
        "amount_total": payment.amount_minor,
        "currency": payment.currency.lower(),
        "payment_status": "paid" if outcome == "succeeded" else "unpaid",
        "payment_intent": "sbx_pi_" + payment.provider_ref[4:],
        "metadata": {"kindly_payment": str(payment.id)},
    }
    if payment.instalment_id is not None:
        obj["customer"] = "sbx_cus_" + payment.provider_ref[4:]
    event = {"id": "evt_sbx_" + secrets.token_hex(12), "type": EVENT_TYPES[outcome],
             "data": {"object": obj}}  # fmt: skip
    return json.dumps(event).encode()


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
            p=load_texts("pay").for_lang(lang),
            lang=lang,
            amount=format_minor(payment.amount_minor, payment.currency, babel),
            creditor=debtor.creditor or debtor.campaign.creditor or "",
            reference=debtor.reference,
            status=payment.status,
            saves_method=payment.instalment_id is not None,
        )


@bp.post("/sandbox/checkout/<ref>")
def outcome(ref: str):
    """Deliver the chosen outcome as a signed webhook, then go back like Stripe does."""
    result = request.form.get("outcome", "")
    if result not in payments.OUTCOMES:
        abort(400)
    ctx = context()
    with ctx.db.session() as session:
        payment, debtor = _attempt(session, ref)
        if payment.status == "started":
            secret = provider_events.sandbox_secret(ctx.settings.secret_key)
            payload = sandbox_event(payment, result)
            header = provider_events.sign(payload, secret)
            provider_events.receive(session, "sandbox", payload, header, secret)
            offers.settle_offers(session, [debtor.id])  # an offer taken: its write-off
        token = debtor.token
    return redirect(f"/s/{token}?payment={result}", code=303)
