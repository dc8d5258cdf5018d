"""Provider webhooks: verified by signature, applied idempotently."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, request

from kindly.core import payments
from kindly.web.debtors import context
from kindly.web.security import csrf_exempt

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

STRIPE_OUTCOMES = {
    "checkout.session.completed": "succeeded",
    "checkout.session.async_payment_succeeded": "succeeded",
    "checkout.session.async_payment_failed": "failed",
    "checkout.session.expired": "canceled",
}


@bp.post("/webhooks/stripe")
@csrf_exempt
def stripe_webhook():
    """Stripe's events: a bad or old signature gets 400 and changes nothing."""
    import stripe

    settings = context().settings
    if not settings.stripe_webhook_secret:
        abort(404)
    try:
        event = stripe.Webhook.construct_event(
            request.get_data(),
            request.headers.get("Stripe-Signature"),
            settings.stripe_webhook_secret,
        )
    except (ValueError, stripe.SignatureVerificationError):
        abort(400)
    outcome = STRIPE_OUTCOMES.get(event.type)
    if outcome is None:
        return {"ignored": event.type}
    checkout = event.data.object
    if outcome == "succeeded" and getattr(checkout, "payment_status", None) not in (
        "paid",
        "no_payment_required",
    ):
        return {"pending": checkout.id}  # e.g. SEPA: wait for async_payment_succeeded
    with context().db.session() as session:
        try:
            payments.settle(session, "stripe", checkout.id, outcome)
        except payments.PaymentError:
            log.warning("stripe event %s names an unknown checkout session", event.id)
            return {"unknown": True}
    return {"ok": True}
