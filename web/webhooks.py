"""Provider webhooks: verified by signature, applied once per event id."""

from __future__ import annotations

from flask import Blueprint, abort, request

from kindly.payments import provider_events
from web.debtor.hits import context
from web.security import csrf_exempt

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/stripe")
@csrf_exempt
def stripe_webhook():
    """Stripe's events: a bad or old signature gets 400 and changes nothing."""
    ctx = context()
    secret = ctx.settings.stripe_webhook_secret
    if not secret:
        abort(404)
    try:
        event = provider_events.verify(
            request.get_data(), request.headers.get("Stripe-Signature"), secret
        )
    except provider_events.BadSignature:
        abort(400)
    with ctx.db.session() as session:
        outcome = provider_events.apply(session, "stripe", event)
    return {"event": event["id"], "outcome": outcome}
